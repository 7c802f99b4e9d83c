"""Real browser, encoder and classifier path: import the digits CNN (and all-MiniLM-L6-v2) with its
button, export it to ONNX, quantize it three ways from the Convert page, benchmark all from the
Benchmarks page, and see latency and accuracy (or cosine agreement) side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize(("button", "task", "quality"), [
    ("Train and import the digits CNN", "image-classification", "Accuracy on held-out labels"),
    ("Import all-MiniLM-L6-v2", "feature-extraction", "Cosine similarity with source, mean"),
], ids=["digits-cnn", "minilm"])
def test_quantized_three_ways_and_compared_from_the_browser(tmp_path: Path, button: str, task: str,
                                                            quality: str) -> None:
    from catalog import config, db, sources, variants

    data = tmp_path / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    with running_app(data) as url, chromium_page() as page:
        page.goto(f"{url}/import")
        page.get_by_role("button", name=button).click()
        page.get_by_text("Queued job").first.wait_for()
        wait_for_jobs(page, url)
        [src], _ = sources.list_sources()
        assert src.task == task

        submit_conversion(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=onnxrt.export")
        wait_for_jobs(page, url)
        fp32 = next(v for v in variants.variants_of_source(src.id) if v.format == "onnx")
        for conversion in ("onnxrt.quantize_dynamic", "onnxrt.quantize_static", "onnxrt.quantize_int4"):
            submit_conversion(page, url, f"source={src.id}&variant={fp32.id}&conversion={conversion}")
        wait_for_jobs(page, url)
        made = [v for v in variants.variants_of_source(src.id) if v.parent_id == fp32.id]
        assert sorted(v.precision for v in made) == ["INT4 RTN", "INT8 dynamic", "INT8 static QDQ"]

        page.goto(f"{url}/model?id={src.id}&variant={made[0].id}")
        page.get_by_text("with parent").first.wait_for()

        run_benchmarks(page, url, src.id, [fp32, *made])
        page.get_by_text("Held-out examples").wait_for()
        body = page.inner_text("body")
        assert quality in body and "Latency per batch" in body
        screenshot(page, f"benchmarks-{src.name.lower()}.png")
    mp.undo()
