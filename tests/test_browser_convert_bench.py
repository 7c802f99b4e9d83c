"""Real browser, the whole path on the session's demo: quantize its Q4_1 file to Q4_K_M (ticking
"allow requantize"), build an int4 ONNX Runtime GenAI variant of its safetensors form from the
form, see the effective types, benchmark both, and see them charted side by side with the
generations. The import click is test_browser.py's; the safetensors form and the baseline's
result come from the chain (tests/conftest.py), as they would from a teammate's earlier work."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_convert_and_benchmark_from_the_browser(chain) -> None:
    from catalog import config, results
    from tests.helpers.chain import planned_variant

    src, root, hf = chain["source"], chain["root"], chain["hf"]
    with running_app(config.data_root()) as url, chromium_page() as page:
        submit_conversion(page, url, f"source={src.id}&variant={root.id}&conversion=llamacpp.quantize",
                          tick="allow requantize")
        submit_conversion(page, url, f"source={src.id}&variant={hf.id}&conversion=onnxrt.genai_build")
        wait_for_jobs(page, url)
        q4 = planned_variant("llamacpp.quantize", root.id, allow_requantize=True)
        int4 = planned_variant("onnxrt.genai_build", hf.id)
        assert (q4.precision, q4.parent_id, q4.state) == ("Q4_K_M", root.id, "available"), q4
        assert (int4.format, int4.precision, int4.state) == ("onnx-genai", "INT4", "available"), int4
        page.goto(f"{url}/model?id={src.id}&variant={q4.id}")
        page.get_by_text("Effective tensor types (requested Q4_K_M)").wait_for()
        page.get_by_text("Top-1 agreement with parent").wait_for()
        screenshot(page, "variant-effective-types.png")

        # The new Q4_K_M always; the int4 unless test_onnxrt.py on this worker measured it already.
        measured = {r.variant_id for r in results.latest_results(src.id, "quick")}
        run_benchmarks(page, url, src.id, [v for v in (q4, int4) if v.id not in measured])
        page.goto(f"{url}/benchmarks?source={src.id}&variants={q4.id},{int4.id}")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        page.get_by_text("Generations on the fixed prompts").wait_for()
        body = page.inner_text("body")
        assert "Perplexity" in body and "onnx-genai INT4" in body  # the ONNX variant beside the GGUF one
        screenshot(page, "benchmarks-page.png")
