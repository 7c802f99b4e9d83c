"""QDQ models for the QNN HTP backend with onnxruntime.quantization's QNN helpers: fixed input
shapes, qnn_preprocess_model, get_qnn_qdq_config (activation and weight types, per-channel,
16-bit overrides for mixed precision) and quantize. Pure toolkit calls: a model file in, a
model file out."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from backends.qnn.bundle_runner import fit_feed  # noqa: F401 - the conversion fits calibration feeds with it
from catalog.errors import InvalidInputError

log = logging.getLogger(__name__)

ACTIVATION_TYPES = ("uint8", "uint16")
WEIGHT_TYPES = ("uint8", "int8", "int4")
_QUANT_TYPES = {"uint8": "QUInt8", "int8": "QInt8", "uint16": "QUInt16", "int16": "QInt16", "int4": "QInt4",
                "uint4": "QUInt4"}
_SHAPE_ITEM = re.compile(r"^\s*([A-Za-z_][\w.:-]*)\s*=\s*(\d+)\s*$")


def quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return getattr(QuantType, _QUANT_TYPES[name])


# ------------------------------------------------------------------------------ shapes


def parse_shapes(text: str) -> dict[str, int]:
    """"batch=1, sequence=128" -> {"batch": 1, "sequence": 128}; one sentence on anything else."""
    out: dict[str, int] = {}
    for item in [p for p in re.split(r"[,;]", text or "") if p.strip()]:
        found = _SHAPE_ITEM.match(item)
        if not found or int(found.group(2)) < 1:
            raise InvalidInputError(f"{item.strip()!r} is not a fixed size; write each dynamic axis as name=size, "
                                    "e.g. batch=1, sequence=128.")
        out[found.group(1)] = int(found.group(2))
    return out


def dynamic_axes(inputs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The named (dynamic) axes of each input, from a variant's recorded inputs."""
    return {i["name"]: [d for d in i.get("shape", []) if isinstance(d, str)] for i in inputs}


def shape_problem(inputs: list[dict[str, Any]], shapes: dict[str, int]) -> str | None:
    """One sentence when a dynamic axis has no size, or a size names no axis; else None."""
    axes = dynamic_axes(inputs)
    named = sorted({a for v in axes.values() for a in v})
    listing = "; ".join(f"{k} ({', '.join(v) or 'fixed'})" for k, v in axes.items())
    missing = [a for a in named if a not in shapes]
    if missing:
        return (f"The HTP runs fixed shapes only, and this model's inputs have dynamic axes: {listing}; give a size "
                f"for {', '.join(missing)} in fixed shapes, e.g. {', '.join(f'{a}=1' for a in missing)}.")
    unknown = sorted(set(shapes) - set(named))
    if unknown:
        return (f"This model has no dynamic axis named {unknown[0]}; its inputs are {listing}.")
    return None


def fix_shapes(src: Path, out: Path, shapes: dict[str, int]) -> dict[str, list[int]]:
    """Write src with every named axis fixed; returns the inputs' fixed shapes."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    model = onnx.load(str(src))
    for name, size in shapes.items():
        make_dim_param_fixed(model.graph, name, size)
    fix_output_shapes(model)
    onnx.save(model, str(out))
    initializers = {i.name for i in model.graph.initializer}
    return {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
            if i.name not in initializers}


# ------------------------------------------------------------------------------ QDQ


class _Reader:
    """onnxruntime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self.feeds)


def sixteen_bit_overrides(model_path: Path, op_types: list[str], tensors: list[str]) -> dict[str, list[dict]]:
    """TensorQuantOverrides keeping the outputs of these op types, and these tensors, at 16 bits."""
    import onnx
    from onnxruntime.quantization import QuantType

    graph = onnx.load(str(model_path), load_external_data=False).graph
    known = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
    ops_here = {n.op_type for n in graph.node}
    bad_ops = [o for o in op_types if o not in ops_here]
    if bad_ops:
        raise InvalidInputError(f"This model has no {bad_ops[0]} operator to keep at 16 bits; its operators are "
                                f"{', '.join(sorted(ops_here))}.")
    bad = [t for t in tensors if t not in known]
    if bad:
        raise InvalidInputError(f"This model has no activation tensor named {bad[0]!r} to keep at 16 bits.")
    names = [o for n in graph.node if n.op_type in op_types for o in n.output] + list(tensors)
    return {name: [{"quant_type": QuantType.QUInt16}] for name in dict.fromkeys(names)}


def quantize_qdq(src: Path, out: Path, feeds: list[dict[str, np.ndarray]], activation_type: str, weight_type: str,
                 per_channel: bool, overrides: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """src (fixed shapes) -> QNN-ready QDQ model at out."""
    from onnxruntime.quantization import quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config, qnn_preprocess_model

    with tempfile.TemporaryDirectory(prefix="qnn-", dir=out.parent) as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        changed = qnn_preprocess_model(str(src), str(pre), fuse_layernorm=True)
        model_in = pre if changed else src
        try:
            config = get_qnn_qdq_config(str(model_in), _Reader(feeds), activation_type=quant_type(activation_type),
                                        weight_type=quant_type(weight_type), per_channel=per_channel,
                                        init_overrides=overrides or None)
            quantize(str(model_in), str(out), config)
        except (ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200].rstrip(".")
            raise InvalidInputError(f"onnxruntime's QNN quantizer refused this model ({first}).") from exc
    return {"activation_type": activation_type, "weight_type": weight_type, "per_channel": per_channel,
            "preprocessed": bool(changed), "calibration_samples": len(feeds),
            "sixteen_bit_tensors": len(overrides or {})}


def count_ops(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
