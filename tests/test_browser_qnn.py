"""Real browser: from the Convert page, quantize the digits CNN's ONNX export to QDQ for the QNN
HTP (the dynamic batch axis fixed in the form), then see its node coverage chart and table on the
Model page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser import chromium_page, running_app, screenshot, submit_conversion, wait_for_jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_qnn_qdq_from_the_convert_page_and_its_coverage_on_the_model_page(root: Path) -> None:
    from backends.importers import ImportRequest, import_now
    from catalog import config, variants
    from tests.helpers.chain import convert

    source = import_now(ImportRequest(kind="demo", example="digits-cnn"))
    [fp32] = convert("onnxrt.export", source.root_variant_id)  # the ONNX path's own browser walk is elsewhere
    with running_app(config.data_root()) as url, chromium_page() as page:
        query = f"source={source.id}&variant={fp32.id}&conversion=qnn.quantize&o_fixed_shapes={quote('batch=1')}"
        page.goto(f"{url}/convert?source={source.id}&variant={fp32.id}&conversion=qnn.quantize")
        page.get_by_text("dynamic axes: pixel_values (batch)").first.wait_for()  # the form names the axes
        submit_conversion(page, url, f"{query}&o_samples=8")
        wait_for_jobs(page, url)
        [qdq] = [v for v in variants.variants_of_source(source.id) if v.format == "qnn"]
        page.goto(f"{url}/model?id={source.id}&variant={qdq.id}")
        page.get_by_text("Node coverage on the QNN HTP simulator").first.wait_for()
        body = page.inner_text("body")
        assert "op type" in body and "Conv" in body and "nodes on the QNN HTP simulator" in body
        screenshot(page, "model-qnn-coverage.png")
