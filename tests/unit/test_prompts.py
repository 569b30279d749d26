"""Prompt assembly: what of the context and the references reaches the image model."""

from __future__ import annotations

import pytest

from storyframe.domain.places import PlaceKind
from storyframe.services.prompts import assemble_prompt, includes_context


@pytest.mark.parametrize(
    ("kind", "with_context", "expected"),
    [
        (PlaceKind.FRAME, False, False),
        (PlaceKind.FRAME, True, True),
        (PlaceKind.CONTEXT, False, True),
        (PlaceKind.CONTEXT, True, True),
        (PlaceKind.MAIN_CHAT, False, True),
        (PlaceKind.MAIN_CHAT, True, True),
        (PlaceKind.GALLERY, True, False),
    ],
)
def test_which_chats_carry_the_context(kind: PlaceKind, with_context: bool, expected: bool) -> None:
    assert includes_context(kind, with_context) is expected


def test_the_prompt_alone() -> None:
    assert assemble_prompt("  a fox  ", None, None) == "a fox"


def test_context_then_description_follow_the_prompt() -> None:
    assembled = assemble_prompt("a fox", " a snowy forest ", "a red fox, side view")
    assert assembled == (
        "a fox\n\nContext of the story: a snowy forest\n\nReference images: a red fox, side view"
    )


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_blank_context_or_description_add_nothing(blank: str) -> None:
    assert assemble_prompt("a fox", blank, blank) == "a fox"


def test_a_long_context_is_cut_to_fit_the_model() -> None:
    prompt, context = "p" * 8_000, "c" * 30_000
    assembled = assemble_prompt(prompt, context, "a description", limit=32_000)
    assert len(assembled) == 32_000
    assert assembled.startswith(prompt + "\n\nContext of the story: ccc")
    assert assembled.endswith("c\u2026\n\nReference images: a description")


def test_with_no_room_for_context_the_description_is_cut_last() -> None:
    assembled = assemble_prompt("p" * 90, "context", "d" * 50, limit=100)
    assert len(assembled) == 100
    assert assembled.startswith("p" * 90 + "\n\nReferen")
    assert assembled.endswith("\u2026")
    assert "Context" not in assembled


def test_the_prompt_alone_is_never_cut() -> None:
    assert assemble_prompt("p" * 120, "context", None, limit=100) == "p" * 120
