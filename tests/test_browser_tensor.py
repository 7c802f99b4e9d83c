"""Real browser, encoder and classifier path: import the digits CNN (and all-MiniLM-L6-v2) with its
button, export it to ONNX, quantize it three ways from the Convert page, benchmark from the
Benchmarks page, and see latency and accuracy (or cosine agreement) side by side.

Both walk it in the session's tensor catalog (tests/helpers/tensor_models.py), where their
conversions already exist: the import button and the page's submits then report the existing
source and variants, and one benchmark is run from the page beside the session's. (A fresh catalog
walk of the digits CNN cost 137 s of the suite; conversions and benchmarks that run from the
browser are the other browser tests'.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, run_benchmarks, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]
THREE_WAYS = ("onnxrt.quantize_dynamic", "onnxrt.quantize_static", "onnxrt.quantize_int4")


def _walk(data: Path, button: str, source_name: str, task: str, quality: str) -> None:
    """Import with the button, export, quantize three ways, open a variant and benchmark."""
    from catalog import jobs, sources, variants

    imports_before = {j.id for j in jobs.list_jobs() if j.kind == "import"}
    with running_app(data) as url, chromium_page() as page:
        page.goto(f"{url}/import")
        page.get_by_role("button", name=button).click()
        page.get_by_text("Queued job").first.wait_for()
        wait_for_jobs(page, url)
        [clicked] = [j for j in jobs.list_jobs() if j.kind == "import" and j.id not in imports_before]
        assert clicked.state == "succeeded", clicked.error
        src = sources.get_source(clicked.source_id)
        assert src.name == source_name and src.task == task

        submit_conversion(page, url, f"source={src.id}&variant={src.root_variant_id}&conversion=onnxrt.export")
        wait_for_jobs(page, url)
        fp32 = next(v for v in variants.variants_of_source(src.id) if v.format == "onnx" and v.precision == "F32")
        for conversion in THREE_WAYS:
            submit_conversion(page, url, f"source={src.id}&variant={fp32.id}&conversion={conversion}")
        wait_for_jobs(page, url)
        # The newest of each (the session's catalog may hold other recipes of the same conversion).
        children = [v for v in variants.variants_of_source(src.id) if v.parent_id == fp32.id]
        made = [max((v for v in children if f"{v.backend}.{v.conversion}" == c), key=lambda v: v.created_at)
                for c in THREE_WAYS]
        assert sorted(v.precision for v in made) == ["INT4 RTN", "INT8 dynamic", "INT8 static QDQ"]

        page.goto(f"{url}/model?id={src.id}&variant={made[0].id}")
        page.get_by_text("with parent").first.wait_for()

        # Beside the session's results, one run from the page is enough to see it charted with the others.
        run_benchmarks(page, url, src.id, made[-1:])
        page.get_by_text("Held-out examples").wait_for()
        body = page.inner_text("body")
        assert quality in body and "Latency per batch" in body
        for v in (fp32, *made):
            assert v.precision in body
        screenshot(page, f"benchmarks-{src.name.lower()}.png")


@pytest.mark.parametrize(("example", "button", "name", "task", "quality"), [
    ("digits-cnn", "Train and import the digits CNN", "digits-cnn", "image-classification",
     "Accuracy on held-out labels"),
    ("minilm", "Import all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "feature-extraction",
     "Cosine similarity with source, mean"),
])
def test_quantized_three_ways_and_compared_from_the_browser(tensor_models, example: str, button: str, name: str,
                                                            task: str, quality: str) -> None:
    _walk(tensor_models[example]["data_root"], button, name, task, quality)
