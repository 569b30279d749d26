"""Storyframe: a GraphQL backend for making videos out of AI-generated stills."""

__version__ = "0.1.0"
