"""Real browser, the whole path: import the demo, make its safetensors form, quantize it to Q4_K_M,
build an int4 ONNX Runtime GenAI variant from the form, see the effective types, benchmark both,
and see them charted side by side with the generations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_convert_and_benchmark_from_the_browser(tmp_path: Path, demo_gguf: Path, llama_tools: Path) -> None:
    from backends.importers import ImportRequest, import_now
    from catalog import config, db

    data = tmp_path / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    src = import_now(ImportRequest(kind="demo"))  # the import click is covered by test_browser.py
    with running_app(data) as url, chromium_page() as page:
        submit_conversion(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=llamacpp.quantize",
                tick="allow requantize")
        submit_conversion(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=llamacpp.dequantize")
        wait_for_jobs(page, url)

        from catalog import variants

        q4 = next(v for v in variants.variants_of_source(src.id) if v.precision == "Q4_K_M")
        hf = next(v for v in variants.variants_of_source(src.id) if v.format == "hf")
        submit_conversion(page, url, f"source={src.id}&variant={hf.id}&conversion=onnxrt.genai_build")
        wait_for_jobs(page, url)
        int4 = next(v for v in variants.variants_of_source(src.id) if v.format == "onnx-genai")
        page.goto(f"{url}/model?id={src.id}&variant={q4.id}")
        page.get_by_text("Effective tensor types (requested Q4_K_M)").wait_for()
        page.get_by_text("Top-1 agreement with parent").wait_for()
        screenshot(page, "variant-effective-types.png")

        run_benchmarks(page, url, src.id, [q4, int4])
        page.get_by_text("Generations on the fixed prompts").wait_for()
        body = page.inner_text("body")
        assert "Perplexity" in body and "onnx-genai INT4" in body  # the ONNX variant beside the GGUF one
        screenshot(page, "benchmarks-page.png")
    mp.undo()
