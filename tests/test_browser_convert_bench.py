"""Real browser, the whole path: import the demo, make its safetensors form, quantize it to Q4_K_M,
build an int4 ONNX Runtime GenAI variant from the form, see the effective types, benchmark both,
and see them charted side by side with the generations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = Path(__file__).resolve().parent.parent / "docs"


def _wait_for_jobs(page, url: str, timeout_s: int = 600) -> None:
    """Reload the Jobs page until nothing is queued, waiting or running."""
    for _ in range(timeout_s // 2):
        page.goto(f"{url}/jobs")
        page.get_by_text("Jobs run in their own processes").wait_for()
        page.wait_for_timeout(1500)
        body = page.inner_text("body")
        if not any(s in body for s in (" · queued ·", " · running ·", " · waiting on parent job ·")):
            assert " · failed ·" not in body, body[-2000:]
            return
    raise AssertionError("jobs did not finish")


def _submit(page, url: str, query: str, tick: str | None = None) -> None:
    page.goto(f"{url}/convert?{query}")
    page.get_by_text("Input variant").wait_for()
    if tick:  # e.g. allow requantize: until it is ticked, pre-flight refuses and there is no plan
        page.get_by_text("already quantized").first.wait_for()
        page.get_by_text(tick, exact=True).click()
    page.get_by_text("Plan", exact=True).wait_for()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Queued job").first.wait_for()


def test_convert_and_benchmark_from_the_browser(tmp_path: Path, demo_gguf: Path, llama_tools: Path) -> None:
    from backends.importers import ImportRequest, import_now
    from catalog import config, db

    data = tmp_path / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    src = import_now(ImportRequest(kind="demo"))  # the import click is covered by test_browser.py
    with running_app(data) as url, chromium_page() as page:
        _submit(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=llamacpp.quantize",
                tick="allow requantize")
        _submit(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=llamacpp.dequantize")
        _wait_for_jobs(page, url)

        from catalog import variants

        q4 = next(v for v in variants.variants_of_source(src.id) if v.precision == "Q4_K_M")
        hf = next(v for v in variants.variants_of_source(src.id) if v.format == "hf")
        _submit(page, url, f"source={src.id}&variant={hf.id}&conversion=onnxrt.genai_build")
        _wait_for_jobs(page, url)
        int4 = next(v for v in variants.variants_of_source(src.id) if v.format == "onnx-genai")
        page.goto(f"{url}/model?id={src.id}&variant={q4.id}")
        page.get_by_text("Effective tensor types (requested Q4_K_M)").wait_for()
        page.get_by_text("Top-1 agreement with parent").wait_for()
        page.screenshot(path=str(SHOTS / "variant-effective-types.png"), full_page=True)

        page.goto(f"{url}/benchmarks?source={src.id}")
        page.get_by_text("Run benchmarks").wait_for()
        page.get_by_role("button", name="Run", exact=True).wait_for()
        picker = page.locator("[data-testid='stMultiSelect']").first
        for v in (q4, int4):
            picker.click()
            page.get_by_role("option", name=f"{v.label} · {v.id}").click()
            page.keyboard.press("Escape")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Queued job").first.wait_for()
        _wait_for_jobs(page, url)

        page.goto(f"{url}/benchmarks?source={src.id}")
        page.get_by_text("Generations on the fixed prompts").wait_for()
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        body = page.inner_text("body")
        assert "Perplexity" in body and "onnx-genai INT4" in body  # the ONNX variant beside the GGUF one
        page.screenshot(path=str(SHOTS / "benchmarks-page.png"), full_page=True)
    mp.undo()
