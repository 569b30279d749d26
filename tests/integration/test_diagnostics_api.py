"""The API diagnostics suite as a user, on both databases: with placeholder images every check
passes, from a generation to an exported PDF; with OpenAI failing its image calls the
generation checks fail; and in any case the scratch project is gone at the end."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from storyframe.runtime import Runtime
from storyframe.services.container import Services
from storyframe.services.diagnostics import (
    CheckResult,
    CheckStatus,
    DiagnosticsEnv,
    Suite,
    plan,
    run_suite,
)
from storyframe.settings import Settings
from tests.support.apps import owned_app
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.uploading import media_files

FLOW_STEPS = [
    "createProject",
    "createVideo",
    "createFrame",
    "generateFrameImages",
    "selectImage",
    "exportVideo",
    "deleteProject",
]


def _env(
    services: Services, dialect: str, *, allow_paid: bool = True, paid_hint: str = "confirm"
) -> DiagnosticsEnv:
    env = DiagnosticsEnv.of_services(
        services,
        storage_backend="local",
        database_dialect=dialect,
        allow_paid=allow_paid,
        paid_hint=paid_hint,
    )
    return replace(env, poll_seconds=0.05)


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


async def test_with_placeholders_every_check_passes_and_nothing_is_left(
    services: Services, runtime: Runtime, dialect: str
) -> None:
    reported: list[str] = []

    async def report(result: CheckResult) -> None:
        reported.append(result.name)
        # the scratch project is there from the first check that needs it until the last
        if result.name not in ("api.configuration", "api.full_flow"):
            assert await services.reads.count_projects() == 1

    results = await run_suite(Suite.API, _env(services, dialect), on_check=report)

    assert reported == [name for name, _ in plan(Suite.API)]
    assert {r.name: (r.status, r.error) for r in results} == {
        name: (CheckStatus.PASSED, None) for name, _ in plan(Suite.API)
    }
    checks = _by_name(results)

    configuration = checks["api.configuration"]
    assert configuration.response is not None
    assert configuration.response["databaseDialect"] == dialect
    assert configuration.response["provider"] == "placeholder"
    assert configuration.response["storageBackend"] == "local"

    generation = checks["api.generation"]
    assert [(i.content_type, i.width, i.height) for i in generation.output_images] == [
        ("image/png", 1024, 1024)
    ]
    assert generation.request is not None
    assert generation.request["mutation"] == "generateMainChatImages"
    assert generation.request["input"]["imageCount"] == 1
    assert generation.response is not None
    assert generation.response["generation"]["status"] == "SUCCEEDED"
    assert generation.response["generation"]["completedCount"] == 1
    (stored,) = generation.response["images"]
    assert stored["bytes"] == len(generation.output_images[0].data)

    with_reference = checks["api.reference_generation"]
    assert with_reference.input_images == generation.output_images
    assert with_reference.request is not None
    assert with_reference.request["input"]["contextImageIds"] == [stored["id"]]
    assert with_reference.response is not None
    final_prompt = with_reference.response["message"]["finalPrompt"]
    assert "Placeholder description" in final_prompt
    assert with_reference.output_images[0].data != generation.output_images[0].data

    analysis = checks["api.analysis"]
    assert analysis.input_images == generation.output_images
    assert analysis.response is not None
    assert analysis.response["placeholder"] is True
    assert "1024\u00d71024 PNG" in analysis.response["text"]

    flow = checks["api.full_flow"]
    assert flow.response is not None
    steps = flow.response["steps"]
    assert [(step["step"], step["ok"]) for step in steps] == [(s, True) for s in FLOW_STEPS]
    export = steps[FLOW_STEPS.index("exportVideo")]["export"]
    assert (export["format"], export["status"], export["contentType"]) == (
        "PDF",
        "SUCCEEDED",
        "application/pdf",
    )
    assert export["byteSize"] > 1000
    assert steps[-1]["deleted"]["images"] == 3
    assert re.fullmatch(
        r"video, frame, one 1024x1024 image selected, PDF of \d+ KiB exported, "
        r"scratch project deleted",
        flow.detail,
    ), flow.detail
    assert [(i.width, i.height) for i in flow.output_images] == [(1024, 1024)]

    assert all(r.estimated_cost_usd == 0.0 for r in results[1:])
    assert await services.reads.count_projects() == 0
    assert media_files(runtime.settings.media_dir) == []


async def test_when_openai_fails_the_image_calls_the_generation_checks_fail_and_nothing_is_left(
    settings: Settings, fake_openai: FakeOpenAI, dialect: str
) -> None:
    fake_openai.fail("images", status=500, code="server_error", times=100)
    openai: dict[str, Any] = {
        "openai_api_key": SecretStr(fake_openai.api_key),
        "openai_base_url": fake_openai.base_url,
    }
    async with owned_app(settings, **openai) as owned:
        results = await run_suite(Suite.API, _env(owned.services, dialect))

        checks = _by_name(results)
        assert {name: (r.status, r.error_code) for name, r in checks.items()} == {
            "api.configuration": (CheckStatus.PASSED, None),
            "api.generation": (CheckStatus.FAILED, "PROVIDER_UNAVAILABLE"),
            "api.reference_generation": (CheckStatus.SKIPPED, None),
            "api.analysis": (CheckStatus.SKIPPED, None),
            "api.full_flow": (CheckStatus.FAILED, "PROVIDER_UNAVAILABLE"),
        }
        for name in ("api.reference_generation", "api.analysis"):
            assert checks[name].skipped_reason == (
                "needs the image of api.generation (Simple generation), which failed"
            )
        generation = checks["api.generation"]
        assert generation.response is not None
        assert generation.response["generation"]["status"] == "FAILED"
        assert generation.response["images"] == []
        flow = checks["api.full_flow"]
        assert flow.detail.startswith("generateFrameImages: PROVIDER_UNAVAILABLE: ")
        assert flow.response is not None
        steps = [(step["step"], step["ok"]) for step in flow.response["steps"]]
        assert steps == [
            ("createProject", True),
            ("createVideo", True),
            ("createFrame", True),
            ("generateFrameImages", False),
            ("deleteProject", True),
        ]
        assert fake_openai.api_key not in json.dumps([r.as_json() for r in results])
        assert await owned.services.reads.count_projects() == 0


async def test_without_consent_nothing_is_made_and_nothing_costs_money(
    settings: Settings, fake_openai: FakeOpenAI, dialect: str, tmp_path: Path
) -> None:
    openai: dict[str, Any] = {
        "openai_api_key": SecretStr(fake_openai.api_key),
        "openai_base_url": fake_openai.base_url,
    }
    async with owned_app(settings, **openai) as owned:
        env = _env(owned.services, dialect, allow_paid=False, paid_hint="run with --yes")

        results = await run_suite(Suite.API, env)

        assert [r.status for r in results] == [CheckStatus.PASSED] + [CheckStatus.SKIPPED] * 4
        assert all(
            (r.skipped_reason or "").startswith("costs money: run with --yes (about $")
            for r in results[1:]
        )
        assert fake_openai.requests_to("images") == []
        assert await owned.services.reads.count_projects() == 0


async def test_the_scratch_project_goes_even_when_the_run_is_broken_off(
    services: Services, dialect: str
) -> None:
    class Stop(Exception):
        pass

    async def stop_after_the_generation(result: CheckResult) -> None:
        if result.name == "api.generation":
            assert await services.reads.count_projects() == 1
            raise Stop

    with pytest.raises(Stop):
        await run_suite(Suite.API, _env(services, dialect), on_check=stop_after_the_generation)

    assert await services.reads.count_projects() == 0
