"""The prompt as sent to the image model, assembled from what the user wrote and what they attached.

- A frame's prompt carries the video's context text only when the user ticked `withContext`.
- The context chat always carries its own text; a main chat always carries the video's context.
- When reference images are attached, a vision model's description of them is appended.
"""

from __future__ import annotations

from storyframe.domain.places import PlaceKind


def includes_context(kind: PlaceKind, with_context: bool) -> bool:
    """Whether a prompt in a chat of `kind` carries the video's context text."""
    if kind is PlaceKind.FRAME:
        return with_context
    return kind in (PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT)


PROMPT_LIMIT = 32_000
"""The longest prompt GPT image models take, in characters."""
_CONTEXT = "Context of the story: "
_REFERENCES = "Reference images: "


def assemble_prompt(
    prompt: str, context_text: str | None, description: str | None, limit: int = PROMPT_LIMIT
) -> str:
    """The user's prompt, then the context, then the description of the reference images. When
    that is longer than `limit`, the context is shortened first (its end cut, marked with "…"),
    then the description; the user's own prompt never is."""
    head = prompt.strip()
    context = (context_text or "").strip()
    seen = (description or "").strip()
    tail = f"\n\n{_REFERENCES}{seen}" if seen else ""
    room = limit - len(head) - len(tail) - len(f"\n\n{_CONTEXT}")
    if context and room < len(context):
        context = context[: max(0, room - 1)].rstrip() + "\u2026" if room > 1 else ""
    middle = f"\n\n{_CONTEXT}{context}" if context else ""
    assembled = head + middle + tail
    if len(assembled) > limit and tail:
        assembled = assembled[: limit - 1].rstrip() + "\u2026"
    return assembled
