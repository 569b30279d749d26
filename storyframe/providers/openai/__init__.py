"""OpenAI as an image provider: the provider on the official SDK, and how its answers read."""

from storyframe.providers.openai.provider import OpenAIProvider, Sleep, build_openai_provider

__all__ = ["OpenAIProvider", "Sleep", "build_openai_provider"]
