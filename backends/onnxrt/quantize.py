"""ONNX quantization with onnxruntime.quantization: dynamic INT8, static INT8 (QDQ or QOperator,
calibrated), weight-only INT4 for MatMul (MatMulNBits) and FP16.

Each function reads the model file src and writes the model file out; the caller checks and runs the
result before it may become a variant.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from backends.onnxrt.entropy_search import use_fast_search
from catalog.errors import InvalidInputError

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")
QUANT_FORMATS = ("QDQ", "QOperator")
INT4_ALGORITHMS = ("RTN", "HQQ")
# Static INT8 quantizes the compute-heavy ops only. Quantizing the attention mask's Add and the
# Softmax input as well took MiniLM's embeddings to a mean cosine of 0.37 against FP32.
STATIC_OP_TYPES = ("MatMul", "Gemm", "Conv")
ENTROPY_BINS = 2048


class FeedReader:
    """onnxruntime's CalibrationDataReader over a list of feeds (one sample per call)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._iter: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def check_feeds(model_path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Calibration feeds must match the graph's inputs in name, rank and fixed dimensions."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    for value in graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        sample = feeds[0].get(value.name)
        if sample is None:
            raise InvalidInputError(f"The calibration data has no input {value.name!r}, which the model needs; "
                                    "give data for this model's inputs.")
        if sample.ndim != len(dims) or any(d and d != s for d, s in zip(dims, sample.shape, strict=False)):
            want = "(" + ", ".join(str(d) if d else "?" for d in dims) + ")"
            raise InvalidInputError(f"The calibration data for {value.name} has shape {tuple(sample.shape)}, but the "
                                    f"model takes {want}; give data of the model's input shape.")


def quantize_dynamic_int8(src: Path, out: Path, per_channel: bool) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Conv stays float: ORT's CPU ConvInteger has no signed-int8 weight kernel, and the layers that
    # dominate encoders and classifier heads are MatMul/Gemm.
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8,
                     per_channel=per_channel, op_types_to_quantize=["MatMul", "Gemm", "Attention", "Gather"])
    return {"weight_type": "int8", "activations": "uint8, scaled at run time", "per_channel": per_channel}


def quantize_static_int8(src: Path, out: Path, feeds: list[dict[str, np.ndarray]], quant_format: str,
                         method: str, per_channel: bool) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    check_feeds(src, feeds)
    extra = {"CalibMovingAverage": False}
    if method == "Percentile":
        extra["CalibPercentile"] = 99.999
    with tempfile.TemporaryDirectory(prefix="calibration-", dir=out.parent) as tmp:
        cache = entropy_ranges(src, feeds, Path(tmp)) if method == "Entropy" else None
        quantize_static(str(src), str(out), FeedReader(feeds),
                        quant_format=getattr(QuantFormat, quant_format), per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method), extra_options=extra,
                        op_types_to_quantize=list(STATIC_OP_TYPES),
                        calibration_cache_path=str(cache) if cache else None)
    return {"weight_type": "int8", "activation_type": "uint8", "format": quant_format, "calibration_method": method,
            "calibration_samples": len(feeds), "per_channel": per_channel}


def entropy_ranges(src: Path, feeds: list[dict[str, np.ndarray]], tmp: Path) -> Path:
    """Entropy (KL) calibration with 2,048 histogram bins searched down to 128 levels, saved as
    quantize_static's calibration cache. quantize_static itself builds the Entropy calibrator with
    128 bins for 128 levels: one candidate range, so its "Entropy" equals MinMax (measured here:
    identical scales on both example models)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    calibrator = create_calibrator(src, list(STATIC_OP_TYPES), augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Entropy,
                                   extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": 128})
    calibrator.collect_data(FeedReader(feeds))
    use_fast_search(calibrator.collector)  # ORT's own search: 100 s on MiniLM; the same thresholds in 1
    cache = tmp / "ranges.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache


def quantize_int4_weights(src: Path, out: Path, algorithm: str, block_size: int, symmetric: bool) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(src))
    if algorithm == "HQQ":
        config: Any = HQQWeightOnlyQuantConfig(block_size=block_size, bits=4)
    else:  # round-to-nearest per block: the quantizer's default algorithm
        config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric)
    quantizer = MatMulNBitsQuantizer(model, block_size=block_size, is_symmetric=symmetric, algo_config=config)
    quantizer.process()
    result = quantizer.model.model
    quantized = sum(1 for n in result.graph.node if n.op_type == "MatMulNBits")
    if quantized == 0:
        raise InvalidInputError("This model has no MatMul with constant weights that INT4 weight-only "
                                "quantization can take; use dynamic or static INT8 instead.")
    onnx.save_model(result, str(out))
    return {"weight_bits": 4, "algorithm": algorithm, "block_size": block_size, "symmetric": symmetric,
            "matmul_nbits_nodes": quantized}


def convert_fp16(src: Path, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True))
    # The converter appends the float32 input casts after their consumers; the checker wants order.
    model.topological_sort()
    onnx.save_model(model.model, str(out))
    return {"weight_type": "float16", "io_types": "float32"}
