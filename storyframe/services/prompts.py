"""The prompt as sent to the image model, assembled from what the user wrote and what they attached.

- A frame's prompt carries the video's context text only when the user ticked `withContext`.
- The context chat always carries its own text; a main chat always carries the video's context.
- When reference images are attached, a vision model's description of them is appended.
"""

from __future__ import annotations

from storyframe.services.places import PlaceKind

DESCRIBE_REFERENCES = (
    "These are reference images for an image generator. Describe what must carry over into a "
    "new image: characters (face, hair, build, clothing), objects, setting, art style, colours, "
    "lighting and composition. Be concrete and brief, in one paragraph, with no preamble."
)


def includes_context(kind: PlaceKind, with_context: bool) -> bool:
    """Whether a prompt in a chat of `kind` carries the video's context text."""
    if kind is PlaceKind.FRAME:
        return with_context
    return kind in (PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT)


def assemble_prompt(prompt: str, context_text: str | None, description: str | None) -> str:
    """The user's prompt, then the context, then the description of the reference images."""
    parts = [prompt.strip()]
    if context_text and context_text.strip():
        parts.append(f"Context of the story: {context_text.strip()}")
    if description and description.strip():
        parts.append(f"Reference images: {description.strip()}")
    return "\n\n".join(parts)
