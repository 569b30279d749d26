"""The OPENAI suite on a scripted provider: each check reported as it finishes, failures
reported per check while the run goes on, the checks that cost money held back, and the models'
lifecycle."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, timedelta

import pytest
from PIL import Image

from storyframe.domain.image_provider import (
    CallResult,
    Description,
    Failure,
    ImageCall,
    PartialSink,
    Produced,
    ProviderError,
    Reference,
    RemoteModel,
    Usage,
)
from storyframe.services.diagnostics import (
    INTERNAL_ERROR,
    CheckResult,
    CheckStatus,
    DiagnosticsEnv,
    Suite,
    run_suite,
)
from storyframe.services.generation import ImageDefaults

TODAY = date(2026, 12, 2)
IMAGE_MODEL = "gpt-image-2.6-flare"
VISION_MODEL = "gpt-5.4-mini"
KEY = "sk-test-0123456789abcdef"


def _png(side: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 20, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


class ScriptedProvider:
    """Answers every call at once; `failures` makes an operation (`complete`, `generate`,
    `edit`, `analyze`, `models`) raise instead. `log` notes each call as it is made."""

    def __init__(self, *, placeholder: bool = False) -> None:
        self._placeholder = placeholder
        self.failures: dict[str, Exception] = {}
        self.listed = [RemoteModel(IMAGE_MODEL), RemoteModel(VISION_MODEL)]
        self.log: list[str] = []
        self.calls: list[ImageCall] = []

    @property
    def placeholder(self) -> bool:
        return self._placeholder

    @property
    def name(self) -> str:
        return "placeholder" if self._placeholder else "openai"

    def _called(self, operation: str) -> None:
        self.log.append(f"called {operation}")
        if operation in self.failures:
            raise self.failures[operation]

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        self.calls.append(call)
        self._called("edit" if call.references else "generate")
        return CallResult([Produced(_png(64))], Usage(20, 100 * len(call.references), 272))

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        raise AssertionError("the suite asks no description of references")

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        self._called("analyze")
        return Description("A blue square.", f"{model}-2026-03-17", Usage(20, 85, 5))

    async def complete(self, prompt: str, model: str) -> Description:
        self._called("complete")
        return Description("Blue.", model, Usage(15, 0, 2))

    async def models(self) -> list[RemoteModel]:
        self._called("models")
        return list(self.listed)

    async def aclose(self) -> None:
        return None


def _env(
    provider: ScriptedProvider, *, allow_paid: bool = True, image_model: str = IMAGE_MODEL
) -> DiagnosticsEnv:
    defaults = ImageDefaults(image_model, VISION_MODEL, "1024x1024", "medium")
    return DiagnosticsEnv(
        provider,
        defaults,
        TODAY,
        allow_paid=allow_paid,
        paid_hint="run with --yes",
        secrets=(KEY,),
    )


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


async def test_each_check_is_reported_as_it_finishes() -> None:
    provider = ScriptedProvider()

    async def reported(result: CheckResult) -> None:
        provider.log.append(f"reported {result.name}")

    results = await run_suite(Suite.OPENAI, _env(provider), on_check=reported)

    assert [(r.name, r.status) for r in results] == [
        ("openai.text", CheckStatus.PASSED),
        ("openai.image", CheckStatus.PASSED),
        ("openai.vision", CheckStatus.PASSED),
        ("openai.edit", CheckStatus.PASSED),
        ("openai.models", CheckStatus.PASSED),
    ]
    assert provider.log == [
        "called complete",
        "reported openai.text",
        "called generate",
        "reported openai.image",
        "called analyze",
        "reported openai.vision",
        "called edit",
        "reported openai.edit",
        "called models",
        "reported openai.models",
    ]
    assert all(r.duration_ms is not None and r.duration_ms >= 0 for r in results)
    # the image is asked as cheaply as the model allows, and edited as the reference
    generation, edit = provider.calls
    assert (generation.size, generation.quality, generation.count) == ("1024x1024", "low", 1)
    assert [ref.data for ref in edit.references] == [results[1].output_images[0].data]
    assert results[2].input_images == results[1].output_images


async def test_a_failed_image_skips_what_needs_it_and_the_run_goes_on() -> None:
    provider = ScriptedProvider()
    provider.failures["generate"] = ProviderError(Failure.UNAVAILABLE, "OpenAI failed (500)")

    results = _by_name(await run_suite(Suite.OPENAI, _env(provider)))

    image = results["openai.image"]
    assert (image.status, image.error_code, image.error) == (
        CheckStatus.FAILED,
        "UNAVAILABLE",
        "OpenAI failed (500)",
    )
    assert image.request is not None
    assert image.request["quality"] == "low"
    for name in ("openai.vision", "openai.edit"):
        assert results[name].status is CheckStatus.SKIPPED
        assert results[name].skipped_reason == (
            "needs the image of openai.image (Image generation), which failed"
        )
        assert results[name].duration_ms is None
    assert results["openai.text"].status is CheckStatus.PASSED
    assert results["openai.models"].status is CheckStatus.PASSED
    assert provider.log == ["called complete", "called generate", "called models"]


async def test_a_fault_nobody_foresaw_fails_its_check_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = ScriptedProvider()
    provider.failures["analyze"] = RuntimeError("a bug")

    results = _by_name(await run_suite(Suite.OPENAI, _env(provider)))

    vision = results["openai.vision"]
    assert (vision.status, vision.error_code, vision.error) == (
        CheckStatus.FAILED,
        INTERNAL_ERROR,
        "a bug",
    )
    assert results["openai.edit"].status is CheckStatus.PASSED
    assert "a diagnostics check failed unexpectedly" in caplog.text


async def test_a_key_in_an_error_is_never_shown() -> None:
    provider = ScriptedProvider()
    provider.failures["complete"] = ProviderError(
        Failure.MISCONFIGURED, f"Incorrect API key provided: {KEY}"
    )

    results = await run_suite(Suite.OPENAI, _env(provider))

    text = results[0]
    assert text.error_code == "MISCONFIGURED"
    assert KEY not in f"{text.error} {text.detail}"
    assert "[redacted]" in f"{text.error}"


async def test_without_consent_the_checks_that_cost_money_are_skipped() -> None:
    provider = ScriptedProvider()

    results = _by_name(await run_suite(Suite.OPENAI, _env(provider, allow_paid=False)))

    for name in ("openai.text", "openai.image", "openai.vision", "openai.edit"):
        reason = results[name].skipped_reason or ""
        assert results[name].status is CheckStatus.SKIPPED, name
        assert reason.startswith("costs money: run with --yes (about $0.0"), reason
    assert results["openai.models"].status is CheckStatus.PASSED
    assert provider.log == ["called models"]


async def test_with_the_placeholder_nothing_costs_money_and_each_check_says_so() -> None:
    provider = ScriptedProvider(placeholder=True)
    provider.listed = [RemoteModel("placeholder")]

    results = await run_suite(Suite.OPENAI, _env(provider, allow_paid=False))

    assert [r.status for r in results] == [CheckStatus.PASSED] * 5
    assert all(r.detail.startswith("placeholder provider (no OpenAI key): ") for r in results)
    assert all(r.estimated_cost_usd == 0.0 for r in results)
    assert provider.calls[0].model == "placeholder"


async def test_a_model_that_takes_no_references_skips_the_edit() -> None:
    provider = ScriptedProvider()
    provider.listed.append(RemoteModel("my-image-model"))

    env = _env(provider, image_model="my-image-model")

    results = _by_name(await run_suite(Suite.OPENAI, env))

    assert results["openai.edit"].status is CheckStatus.SKIPPED
    assert results["openai.edit"].skipped_reason == "my-image-model takes no reference images"
    assert results["openai.image"].status is CheckStatus.PASSED


@pytest.mark.parametrize(
    ("listed", "status", "detail", "warning"),
    [
        pytest.param(
            {IMAGE_MODEL: TODAY + timedelta(days=10), VISION_MODEL: None},
            CheckStatus.PASSED,
            "2 models offered; gpt-image-2.6-flare and gpt-5.4-mini live "
            "(gpt-image-2.6-flare shuts down on 2026-12-12)",
            "gpt-image-2.6-flare shuts down on 2026-12-12",
            id="in-10-days",
        ),
        pytest.param(
            {IMAGE_MODEL: None, VISION_MODEL: TODAY + timedelta(days=31)},
            CheckStatus.PASSED,
            "2 models offered; gpt-image-2.6-flare and gpt-5.4-mini live "
            "(gpt-5.4-mini shuts down on 2027-01-02)",
            None,
            id="in-31-days",
        ),
        pytest.param(
            {IMAGE_MODEL: TODAY, VISION_MODEL: None},
            CheckStatus.FAILED,
            "gpt-image-2.6-flare was shut down on 2026-12-02",
            None,
            id="today",
        ),
        pytest.param(
            {IMAGE_MODEL: None},
            CheckStatus.FAILED,
            "gpt-5.4-mini is not offered",
            None,
            id="not-offered",
        ),
    ],
)
async def test_the_models_lifecycle(
    listed: dict[str, date | None], status: CheckStatus, detail: str, warning: str | None
) -> None:
    provider = ScriptedProvider()
    provider.listed = [RemoteModel(name, shutdown) for name, shutdown in listed.items()]

    results = _by_name(await run_suite(Suite.OPENAI, _env(provider)))

    models = results["openai.models"]
    assert (models.status, models.detail, models.warning) == (status, detail, warning)
    if status is CheckStatus.FAILED:
        assert models.error_code == "MISCONFIGURED"
