"""`storyframe selftest`: checks the generation set-up, offline or against (a fake) OpenAI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storyframe.cli import main
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401


def _selftest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["selftest", *args])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


def _checks(report: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {check["name"]: (check["ok"], check["detail"]) for check in report["checks"]}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STORYFRAME_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_IMAGE_MODEL", raising=False)


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI) -> FakeOpenAI:
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    return fake_openai


def test_offline_it_makes_and_describes_a_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _selftest(capsys, "--generate")

    assert code == 0
    assert (report["ok"], report["provider"]) == (True, "placeholder")
    checks = _checks(report)
    assert list(checks) == ["configuration", "generation", "vision", "edit"]
    assert all(ok for ok, _ in checks.values())
    assert checks["generation"][1] == "one 1024x1024 image"


def test_without_generate_it_only_asks_for_the_models(
    capsys: pytest.CaptureFixture[str], openai_env: FakeOpenAI
) -> None:
    code, report = _selftest(capsys)

    assert code == 0
    assert list(_checks(report)) == ["configuration", "models"]
    assert [r.endpoint for r in openai_env.requests] == ["models"]


def test_against_openai_it_generates_describes_and_edits(
    capsys: pytest.CaptureFixture[str], openai_env: FakeOpenAI
) -> None:
    code, report = _selftest(capsys, "--generate")

    assert code == 0, report
    assert report["imageModel"] == "gpt-image-2.6-flare"
    checks = _checks(report)
    assert checks["models"][0] is True
    assert checks["generation"] == (True, "one 64x64 image")
    assert checks["vision"][0] is True
    assert checks["edit"] == (True, "one 64x64 image from a reference")
    generation, edit = openai_env.requests_to("images")
    assert (generation.endpoint, generation.params["quality"], generation.params["n"]) == (
        "generations",
        "low",
        1,
    )
    assert edit.endpoint == "edits"
    assert len(edit.files) == 1
    costs = [c["estimatedCostUsd"] for c in report["checks"] if c["name"] != "models"]
    assert all(cost is None or cost > 0 for cost in costs)


def test_a_refused_key_fails_the_test(
    capsys: pytest.CaptureFixture[str], openai_env: FakeOpenAI
) -> None:
    openai_env.fail("models", status=401, code="invalid_api_key")
    openai_env.fail("generations", status=401, code="invalid_api_key")

    code, report = _selftest(capsys, "--generate")

    assert code == 1
    assert report["ok"] is False
    checks = _checks(report)
    assert checks["models"][0] is False
    assert checks["models"][1].startswith("MISCONFIGURED")
    assert checks["generation"][0] is False
    assert "vision" not in checks


def test_a_retired_or_missing_model_fails_the_test(
    capsys: pytest.CaptureFixture[str],
    openai_env: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "gpt-image-2")
    openai_env.models = {"gpt-image-2": "2026-01-01"}

    code, report = _selftest(capsys)

    assert code == 1
    assert _checks(report)["models"] == (
        False,
        "gpt-image-2 was shut down on 2026-01-01; gpt-5.4-mini is not offered",
    )


def test_a_model_retiring_later_passes_with_a_warning(
    capsys: pytest.CaptureFixture[str], openai_env: FakeOpenAI
) -> None:
    openai_env.models = {"gpt-image-2.6-flare": "2099-01-01", "gpt-5.4-mini": None}

    code, report = _selftest(capsys)

    assert code == 0
    assert _checks(report)["models"] == (True, "gpt-image-2.6-flare shuts down on 2099-01-01")
