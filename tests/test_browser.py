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


def test_import_from_a_local_hugging_face_cache_by_clicks(tmp_path: Path) -> None:
    """The Import page's "Local HF cache" tab lists a cache under an allowed folder and imports
    the picked model (the real Hub cache layout: blobs, snapshot links, refs/main)."""
    from catalog import sources
    from tests.helpers.chain import data_root_at
    from tests.helpers.models import tiny_hf_folder
    from tests.test_import import make_hf_cache

    data = tmp_path / "data"
    commit = make_hf_cache(tmp_path / "hub", "acme/tiny", tiny_hf_folder(tmp_path / "tiny"))
    with data_root_at(data, allowed_roots=[str(tmp_path)]), running_app(data) as url, chromium_page() as page:
        page.goto(f"{url}/import")
        page.get_by_role("tab", name="Local HF cache").click()
        page.get_by_label("Cache folder (empty: the default Hugging Face cache)").fill(str(tmp_path / "hub"))
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Import from cache").wait_for()  # shown once the cache lists a model
        assert page.get_by_role("combobox", name="Model").input_value().startswith(f"acme/tiny @ {commit[:10]}")
        page.get_by_role("button", name="Import from cache").click()
        page.get_by_text("Queued job").wait_for()
        for _ in range(60):  # the supervisor started with the app runs the job
            found = [s for s in sources.list_sources()[0] if s.origin_ref == "acme/tiny"]
            if found:
                break
            page.wait_for_timeout(1000)
        assert found and found[0].origin_kind == "hf_cache" and found[0].origin_revision == commit
        screenshot(page, "import-hf-cache.png")
