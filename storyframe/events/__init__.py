"""Progress events of generations, from the process that runs them to their subscribers."""

from storyframe.events.hub import EventHub

__all__ = ["EventHub"]
