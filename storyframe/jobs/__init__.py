"""The job engine: what runs accepted generations, fairly across users, within set caps."""

from storyframe.jobs.runner import InProcessRunner

__all__ = ["InProcessRunner"]
