"""Real browser: make MLX 4-bit of the demo from the Convert page, benchmark it (quick profile; MLX
runs on its CPU backend here) and see it charted beside the GGUF Q4_K_M and ONNX Runtime GenAI int4
variants, with the device it ran on."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_mlx_4_bit_from_the_browser_beside_gguf_and_onnx(chain) -> None:
    from catalog import config, results
    from tests.helpers.chain import benchmark_unmeasured, convert, planned_variant

    src, hf, q4 = chain["source"], chain["hf"], chain["quants"]["Q4_K_M"]
    [genai] = convert("onnxrt.genai_build", hf.id, precision="int4")  # the browser path is test_browser_convert_bench
    benchmark_unmeasured([q4, genai])  # cheap; measured once per session by whichever test comes first
    with running_app(config.data_root()) as url, chromium_page() as page:
        submit_conversion(page, url, f"source={src.id}&variant={hf.id}&conversion=mlx.convert")  # 4-bit, group 64
        wait_for_jobs(page, url)
        mlx4 = planned_variant("mlx.convert", hf.id)  # this form's recipe, not another test's 4-bit g64
        assert (mlx4.format, mlx4.precision, mlx4.state) == ("mlx", "4-bit g64", "available")
        page.goto(f"{url}/model?id={src.id}&variant={mlx4.id}")
        page.get_by_text("Top-1 agreement with parent").wait_for()

        if mlx4.id not in {r.variant_id for r in results.latest_results(src.id, "quick")}:
            run_benchmarks(page, url, src.id, [mlx4])
        page.goto(f"{url}/benchmarks?source={src.id}&variants={','.join([mlx4.id, q4.id, genai.id])}")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        page.get_by_text("Generations on the fixed prompts").wait_for()
        body = page.inner_text("body")
        assert "mlx 4-bit g64" in body and "gguf Q4_K_M" in body and "onnx-genai INT4" in body, body[-3000:]
        screenshot(page, "benchmarks-mlx.png")
    [result] = [r for r in results.latest_results(src.id, "quick") if r.variant_id == mlx4.id]
    assert result.runtime == "MLX CPU" and result.fingerprint["runtime_device"]["device"] == "cpu"
