"""Progress events of generations, from the process that runs them to their subscribers."""

from storyframe.events.hub import EventHub
from storyframe.events.postgres import PostgresEvents

__all__ = ["EventHub", "PostgresEvents"]
