"""Real browser: headless Chromium drives the running app."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, running_app, screenshot

pytestmark = pytest.mark.browser


def test_import_the_demo_and_open_its_model_page(tmp_path: Path, demo_gguf: Path) -> None:
    with running_app(tmp_path / "data") as url, chromium_page() as page:
        page.goto(url)
        page.get_by_role("button", name="Import the demo model").click()
        page.get_by_text("Queued job").wait_for()
        # The supervisor started with the app runs the job; the catalog lists the model.
        for _ in range(60):
            page.goto(url)
            page.wait_for_selector("h1")
            if page.get_by_text("1 source model(s)").count():
                break
            page.wait_for_timeout(1000)
        page.get_by_role("link", name="Open", exact=True).first.click()
        page.get_by_text("Lineage", exact=True).wait_for()
        page.get_by_role("tab", name="Files").click()
        page.get_by_text("1 file(s), 93.8 MB").wait_for()
        # The files grid draws on a canvas; its cells exist in the DOM for accessibility.
        page.locator("td", has_text="SmolLM2-135M-Instruct.Q4_1.gguf").first.wait_for(state="attached")
        body = page.inner_text("body")
        assert "llama" in body and "8,192" in body and "134.5M" in body
        screenshot(page, "model-page.png")
