"""Real browser: from the Convert page, make int8 and int4 OpenVINO IR of the demo (the option
preset by the page's link), benchmark them (unless test_openvino.py on the same worker did), and
see them charted beside Q4_K_M and ONNX Runtime
GenAI int4 on the Benchmarks page, with their perplexities."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_openvino_variants_from_the_browser_beside_gguf_and_onnx(chain, tmp_path: Path) -> None:
    from catalog import config, results
    from tests.helpers.chain import benchmark_unmeasured, convert, planned_variant

    src, hf = chain["source"], chain["hf"]
    q4 = chain["quants"]["Q4_K_M"]
    [genai] = convert("onnxrt.genai_build", hf.id, precision="int4")  # the browser path is test_browser_convert_bench
    benchmark_unmeasured([q4, genai])
    with running_app(config.data_root()) as url, chromium_page() as page:
        base = f"source={src.id}&variant={hf.id}&conversion=openvino.export_llm"
        submit_conversion(page, url, f"{base}&o_weight_format=int8")
        submit_conversion(page, url, base)  # the declared default: int4
        wait_for_jobs(page, url)
        # The ones this form made (earlier tests may have made other INT8/INT4 recipes of the demo).
        made = {"INT8": planned_variant("openvino.export_llm", hf.id, weight_format="int8"),
                "INT4": planned_variant("openvino.export_llm", hf.id)}
        assert {v.precision for v in made.values()} == {"INT8", "INT4"}, made
        page.goto(f"{url}/model?id={src.id}&variant={made['INT4'].id}")
        page.get_by_text("Top-1 agreement with parent").wait_for()

        # In the suite test_openvino.py measured these IRs already (same worker, same recipes);
        # alone, this test benchmarks them from the page.
        measured = {r.variant_id for r in results.latest_results(src.id, "quick")}
        if unmeasured := [v for v in made.values() if v.id not in measured]:
            run_benchmarks(page, url, src.id, unmeasured)
        page.goto(f"{url}/benchmarks?source={src.id}&variants={','.join(v.id for v in [*made.values(), q4, genai])}")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        page.get_by_text("Generations on the fixed prompts").wait_for()
        body = page.inner_text("body")
        assert "Perplexity" in body and "openvino INT4" in body and "onnx-genai INT4" in body and "Q4_K_M" in body
        screenshot(page, "benchmarks-openvino.png")
