"""The encoder and classifier examples (the digits CNN and all-MiniLM-L6-v2), imported, exported to
ONNX, quantized four ways and benchmarked on the quick protocol: made once per test session
(tests/conftest.py) and read by the ONNX Runtime tests and the encoder browser test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUANTIZATIONS = {
    "dynamic": ("onnxrt.quantize_dynamic", {"per_channel": True}),
    "static": ("onnxrt.quantize_static", {"format": "QDQ", "method": "MinMax", "samples": 32}),
    "int4": ("onnxrt.quantize_int4", {"algorithm": "RTN", "block_size": "32", "symmetric": True}),
    "fp16": ("onnxrt.convert_fp16", {}),
}


def make_tensor_models(data: Path) -> dict[str, dict[str, Any]]:
    """Both examples in one data root; each entry also names that root ("data_root")."""
    from backends.importers import ImportRequest, import_now
    from catalog import results, sources
    from tests.helpers.chain import benchmark, convert, data_root_at

    out: dict[str, dict[str, Any]] = {}
    with data_root_at(data, allowed_roots=[str(data.parent)]):
        for example in ("digits-cnn", "minilm"):
            source = import_now(ImportRequest(kind="demo", example=example))
            [fp32] = convert("onnxrt.export", source.root_variant_id)
            made: dict[str, Any] = {"source": source, "root": sources.get_source(source.id).root_variant_id,
                                    "fp32": fp32, "data_root": data}
            for name, (conversion, options) in QUANTIZATIONS.items():
                [made[name]] = convert(conversion, fp32.id, **options)
            benchmark([made["root"], fp32.id, made["dynamic"].id, made["static"].id, made["int4"].id])
            made["results"] = {r.variant_id: r for r in results.latest_results(source.id, "quick")}
            out[example] = made
    return out
