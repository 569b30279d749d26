"""The checks of each suite, in the order they run: their names, titles, whether they cost
money, and which earlier check's output they use."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.services.diagnostics.results import Suite


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    title: str
    paid: bool = False
    """Whether it costs money with a real provider (never with the placeholder)."""
    needs: str | None = None
    """The check whose output (an image) it works on: when that one did not pass, this one is
    skipped."""


TEXT = CheckSpec("openai.text", "Text completion", paid=True)
IMAGE = CheckSpec("openai.image", "Image generation", paid=True)
VISION = CheckSpec("openai.vision", "Vision analysis", paid=True, needs=IMAGE.name)
EDIT = CheckSpec("openai.edit", "Image edit with a reference", paid=True, needs=IMAGE.name)
MODELS = CheckSpec("openai.models", "Models and their shutdown dates")

CONFIGURATION = CheckSpec("api.configuration", "Configuration")
GENERATION = CheckSpec("api.generation", "Simple generation", paid=True)
REFERENCE_GENERATION = CheckSpec(
    "api.reference_generation",
    "Generation with a reference image",
    paid=True,
    needs=GENERATION.name,
)
ANALYSIS = CheckSpec("api.analysis", "Image analysis", paid=True, needs=GENERATION.name)
FULL_FLOW = CheckSpec("api.full_flow", "Full flow, project to PDF export", paid=True)

SUITES: dict[Suite, tuple[CheckSpec, ...]] = {
    Suite.OPENAI: (TEXT, IMAGE, VISION, EDIT, MODELS),
    Suite.API: (CONFIGURATION, GENERATION, REFERENCE_GENERATION, ANALYSIS, FULL_FLOW),
}


def plan(suite: Suite) -> list[tuple[str, str]]:
    """The (name, title) of each check of the suite, in the order they run: what a page shows
    as pending before the first result comes."""
    return [(spec.name, spec.title) for spec in SUITES[suite]]
