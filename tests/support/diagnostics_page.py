"""The diagnostics page (`GET /diagnostics`) as a user works it in a real browser: log in or paste
a token, pick a suite, confirm the cost, run, and read what each check shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support.browser import ANSWER_MS

TOKEN_KEY = "storyframe.diagnostics.token"
RUN_KEY = "storyframe.diagnostics.run"
FINISHED = re.compile("^(PASSED|FAILED)$")
# Every image of the checks shown has loaded and decoded to some pixels.
_IMAGES_RENDERED = """() => [...document.querySelectorAll("#checks img")]
    .every((image) => image.complete && image.naturalWidth > 0)"""
_ROWS = """() => [...document.querySelectorAll("#checks > li")].map((row) => ({
    name: row.dataset.name,
    status: row.querySelector(".check-status").textContent,
    title: row.querySelector(".check-title").textContent,
    duration: row.querySelector(".check-duration")?.textContent ?? null,
    facts: Object.fromEntries([...row.querySelectorAll(".facts dt")].map(
        (term) => [term.textContent, term.nextElementSibling.textContent])),
    json: [...row.querySelectorAll("details.json summary")].map((s) => s.textContent),
    inputImages: [...row.querySelectorAll(".input-images img")].map((i) => i.naturalWidth),
    outputImages: [...row.querySelectorAll(".output-images img")].map((i) => i.naturalWidth),
}))"""


@dataclass(frozen=True)
class CheckRow:
    """One check as the page shows it; images as the width each decoded to."""

    name: str
    status: str
    title: str
    duration: str | None
    facts: dict[str, str]
    json: list[str]
    input_images: list[int]
    output_images: list[int]

    @staticmethod
    def of(row: dict[str, Any]) -> CheckRow:
        return CheckRow(
            name=row["name"],
            status=row["status"],
            title=row["title"],
            duration=row["duration"],
            facts=row["facts"],
            json=row["json"],
            input_images=row["inputImages"],
            output_images=row["outputImages"],
        )


class DiagnosticsPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.status = page.locator("#run-status")
        self.total = page.locator("#run-total")
        self.run_error = page.locator("#run-error")
        self.login_error = page.locator("#login-error")
        self.cost_note = page.locator("#cost-note")
        self.run_button = page.get_by_role("button", name=re.compile("^(Run|Running…)$"))

    def open(self, base_url: str) -> None:
        self.page.goto(f"{base_url}/diagnostics")
        expect(self.page.get_by_role("heading", name="Storyframe diagnostics")).to_be_visible()

    def log_in(self, email: str, password: str) -> None:
        form = self.page.locator("#login-form")
        form.get_by_label("E-mail").fill(email)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Log in").click()

    def paste_token(self, token: str) -> None:
        self.page.get_by_label("Token", exact=True).fill(token)
        self.page.get_by_role("button", name="Use this token").click()

    def log_out(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        expect(self.page.locator("#login-form")).to_be_visible(timeout=ANSWER_MS)
        expect(self.page.locator("#signed-in")).to_be_hidden()

    def expect_logged_in_as(self, email: str) -> None:
        expect(self.page.locator("#signed-in")).to_be_visible(timeout=ANSWER_MS)
        expect(self.page.locator("#viewer-email")).to_have_text(email)
        expect(self.page.locator("#login-form")).to_be_hidden()

    def run(self, suite: str, *, confirm_cost: bool = False) -> None:
        """Pick the suite (the label of its radio button starts with its name) and press Run."""
        label = {"OPENAI": "OpenAI", "API": "API"}[suite]
        self.page.get_by_label(re.compile(f"^{label}:")).check()
        self.page.get_by_label("Confirm the cost").set_checked(confirm_cost)
        self.run_button.click()

    def wait_until_finished(self) -> str:
        """The run's status once it is PASSED or FAILED, with the Run button free again."""
        expect(self.status).to_have_attribute("data-status", FINISHED, timeout=ANSWER_MS)
        expect(self.run_button).to_be_enabled(timeout=ANSWER_MS)
        return str(self.status.get_attribute("data-status"))

    def rows(self) -> list[CheckRow]:
        """The checks in the order shown, once every image among them has rendered."""
        self.page.wait_for_function(_IMAGES_RENDERED, timeout=ANSWER_MS)
        return [CheckRow.of(row) for row in self.page.evaluate(_ROWS)]

    def row(self, name: str) -> Locator:
        return self.page.locator(f"#checks > li[data-name='{name}']")

    def listed(self) -> list[str]:
        """The names of the checks shown, in order, whatever their state."""
        rows = self.page.locator("#checks > li")
        return [str(name) for name in rows.evaluate_all("(l) => l.map((r) => r.dataset.name)")]

    def session_token(self) -> str | None:
        return self._kept(TOKEN_KEY)

    def run_id(self) -> str | None:
        """The ID of the run shown, as the tab keeps it for a reload."""
        return self._kept(RUN_KEY)

    def _kept(self, key: str) -> str | None:
        value = self.page.evaluate("(key) => window.sessionStorage.getItem(key)", key)
        return None if value is None else str(value)

    def local_storage_length(self) -> int:
        return int(self.page.evaluate("() => window.localStorage.length"))
