"""Real browser: Olive's auto-opt int4 of the demo from the Convert page, then charted on the
Benchmarks page beside the GGUF Q4_K_M and the ONNX Runtime model builder's own int4 (issue 23).
It runs after test_olive in its worker, which made and measured the same recipe: the form finds
the variant made, so only what was not measured yet is benchmarked here."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_olive_auto_opt_from_the_browser_beside_gguf_and_the_builders_int4(chain) -> None:
    from catalog import config, results
    from tests.helpers.chain import benchmark_unmeasured, planned_variant

    src, hf, q4 = chain["source"], chain["hf"], chain["quants"]["Q4_K_M"]
    builder = chain["genai"]  # the model builder's int4, made and measured with the chain
    benchmark_unmeasured([q4, builder])
    with running_app(config.data_root()) as url, chromium_page() as page:
        submit_conversion(page, url, f"source={src.id}&variant={hf.id}&conversion=olive.auto_opt")  # int4, CPU
        wait_for_jobs(page, url)
        olive = planned_variant("olive.auto_opt", hf.id)
        assert (olive.format, olive.precision, olive.state) == ("onnx-genai", "INT4", "available")
        page.goto(f"{url}/model?id={src.id}&variant={olive.id}")
        page.get_by_text("Top-1 agreement with parent").wait_for()
        page.get_by_text("Olive's record of the run").wait_for()  # its passes, kept with the variant
        page.get_by_text("olive/run_history.txt").first.wait_for()
        page.get_by_text("As the toolkit wrote it").click()  # Olive's run history, as Olive wrote it
        page.locator("[data-testid='stCode']").filter(has_text="modelbuilder").first.wait_for()
        screenshot(page, "model-olive-record.png")

        if olive.id not in {r.variant_id for r in results.latest_results(src.id, "quick")}:
            run_benchmarks(page, url, src.id, [olive])
        page.goto(f"{url}/benchmarks?source={src.id}&variants={','.join([olive.id, q4.id, builder.id])}")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        body = page.inner_text("body")
        # both are "onnx-genai INT4": the chart and the generations table tell them apart by their maker
        for label in ("onnx-genai INT4 (olive auto_opt)", "onnx-genai INT4 (onnxrt genai_build)", "gguf Q4_K_M"):
            assert label in body, body[-3000:]
        screenshot(page, "benchmarks-olive.png")
