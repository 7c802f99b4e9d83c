"""Real browser: make an MLX 4-bit from the Convert page, benchmark it from the Benchmarks page
(quick profile; MLX runs on its CPU backend here) and see it charted beside the GGUF Q8_0 and ONNX
Runtime GenAI int4 variants of the same source, with the device it ran on. The source is a tiny
Llama with the demo's tokenizer: the demo's MLX quick benchmark takes 4.5 minutes on this CPU
backend, and test_mlx scores the demo's MLX variants."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_mlx_4_bit_from_the_browser_beside_gguf_and_onnx(chain, tmp_path) -> None:
    from catalog import config, results
    from tests.helpers.chain import benchmark_unmeasured, convert, import_tiny_llama, planned_variant

    hf = import_tiny_llama(chain["hf"], config.data_root(), tmp_path / "tiny")
    src = hf.source_id
    [q8] = [v for v in convert("llamacpp.quantize", hf.id, types=["Q8_0"]) if v.precision == "Q8_0"]
    [genai] = convert("onnxrt.genai_build", hf.id, precision="int4")  # the browser path is test_browser_convert_bench
    benchmark_unmeasured([hf, q8, genai])  # seconds on this model; test_mlx's fixture may have measured them
    with running_app(config.data_root()) as url, chromium_page() as page:
        submit_conversion(page, url, f"source={src}&variant={hf.id}&conversion=mlx.convert")  # 4-bit, group 64
        wait_for_jobs(page, url)
        mlx4 = planned_variant("mlx.convert", hf.id)  # this form's recipe
        assert (mlx4.format, mlx4.precision, mlx4.state) == ("mlx", "4-bit g64", "available")
        page.goto(f"{url}/model?id={src}&variant={mlx4.id}")
        page.get_by_text("Top-1 agreement with parent").wait_for()

        if mlx4.id not in {r.variant_id for r in results.latest_results(src, "quick")}:
            run_benchmarks(page, url, src, [mlx4])  # test_mlx's fixture measures it first in the suite
        page.goto(f"{url}/benchmarks?source={src}&variants={','.join([mlx4.id, q8.id, genai.id])}")
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        page.get_by_text("Generations on the fixed prompts").wait_for()
        body = page.inner_text("body")
        assert "mlx 4-bit g64" in body and "gguf Q8_0" in body and "onnx-genai INT4" in body, body[-3000:]
        screenshot(page, "benchmarks-mlx.png")
    [result] = [r for r in results.latest_results(src, "quick") if r.variant_id == mlx4.id]
    assert result.runtime == "MLX CPU" and result.fingerprint["runtime_device"]["device"] == "cpu"
