"""QNN quantization-overrides JSON (what qnn-onnx-converter --quantization_overrides reads) from a
QDQ model, and back into onnxruntime's TensorQuantOverrides.

QNN's encodings store `offset = round(min / scale)`: the negative of an unsigned type's zero
point (uint8 zero point 128 -> offset -128), and for a signed type `qmin - zero point` (an int8
symmetric weight, zero point 0, also reads offset -128). The source chapter's `offset = -min /
scale` is the zero point with the other sign; the round trip below is what settles it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from catalog.errors import InvalidInputError

OVERRIDES_FILE = "quantization_overrides.json"
# ONNX TensorProto element types of zero points -> (type name, bits, signed)
_ZP_TYPES = {2: ("uint8", 8, False), 3: ("int8", 8, True), 4: ("uint16", 16, False), 5: ("int16", 16, True),
             6: ("int32", 32, True), 21: ("uint4", 4, False), 22: ("int4", 4, True)}


def _qmin(bits: int, signed: bool) -> int:
    return -(2 ** (bits - 1)) if signed else 0


def _encoding(scale: float, zero_point: int, bits: int, signed: bool) -> dict[str, Any]:
    qmin = _qmin(bits, signed)
    qmax = qmin + 2 ** bits - 1
    return {"bitwidth": bits, "dtype": "int", "is_symmetric": str(signed and zero_point == 0),
            "min": float((qmin - zero_point) * scale), "max": float((qmax - zero_point) * scale),
            "scale": float(scale), "offset": int(qmin - zero_point)}


def encodings(model_path: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """activation_encodings and param_encodings of every quantized tensor of a QDQ model, by the
    float tensor's name (weights: the initializer's name before quantization)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path), load_external_data=False).graph
    inits = {i.name: i for i in graph.initializer}
    activations: dict[str, list[dict[str, Any]]] = {}
    params: dict[str, list[dict[str, Any]]] = {}
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        scale_init, zp_init = inits.get(node.input[1]), inits.get(node.input[2])
        if scale_init is None or zp_init is None:
            continue
        kind = _ZP_TYPES.get(zp_init.data_type)
        if kind is None:
            continue
        _, bits, signed = kind
        scales = np.atleast_1d(numpy_helper.to_array(scale_init)).astype(np.float64)
        zps = np.atleast_1d(numpy_helper.to_array(zp_init)).astype(np.int64)
        entries = [_encoding(s, z, bits, signed) for s, z in zip(scales, zps, strict=True)]
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            activations.setdefault(node.input[0], entries)
        elif node.op_type == "DequantizeLinear" and node.input[0] in inits:
            name = node.input[0].removesuffix("_quantized")
            axis = next((a.i for a in node.attribute if a.name == "axis"), None)
            if len(entries) > 1 and axis is not None:
                entries[0]["axis"] = axis  # per channel: onnxruntime needs the axis back
            params.setdefault(name, entries)
    return {"activation_encodings": activations, "param_encodings": params}


def write(model_path: Path, out: Path) -> dict[str, int]:
    enc = encodings(model_path)
    out.write_text(json.dumps(enc, indent=1, sort_keys=True))
    return {"activation_encodings": len(enc["activation_encodings"]), "param_encodings": len(enc["param_encodings"])}


def _quant_type(bits: int, signed: bool) -> Any:
    from onnxruntime.quantization import QuantType

    names = {(8, False): "QUInt8", (8, True): "QInt8", (16, False): "QUInt16", (16, True): "QInt16",
             (4, False): "QUInt4", (4, True): "QInt4"}
    if (bits, signed) not in names:
        raise InvalidInputError(f"A {bits}-bit encoding cannot be given to onnxruntime's quantizer.")
    return getattr(QuantType, names[(bits, signed)])


def to_tensor_overrides(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """QNN encodings -> TensorQuantOverrides ({tensor: [{quant_type, scale, zero_point[, axis]}]}).
    A signed type is read where the encoding says symmetric and its offset is the type's minimum;
    32-bit (bias) encodings are left to the quantizer, which derives them from the others."""
    out: dict[str, list[dict[str, Any]]] = {}
    for section in ("activation_encodings", "param_encodings"):
        for name, entries in (data.get(section) or {}).items():
            if not isinstance(entries, list) or not entries:
                raise InvalidInputError(f"The encoding of {name!r} must be a non-empty list.")
            converted = []
            for entry in entries:
                try:
                    bits, scale, offset = int(entry["bitwidth"]), float(entry["scale"]), int(entry["offset"])
                except (KeyError, TypeError, ValueError):
                    raise InvalidInputError(f"The encoding of {name!r} needs bitwidth, scale and offset.") from None
                if bits == 32:
                    break
                signed = str(entry.get("is_symmetric", "False")) == "True" and offset == _qmin(bits, True)
                qtype = _quant_type(bits, signed)
                zero_point = _qmin(bits, signed) - offset
                dtype = {8: np.uint8, 16: np.uint16, 4: np.uint8}[bits] if not signed else \
                    {8: np.int8, 16: np.int16, 4: np.int8}[bits]
                item: dict[str, Any] = {"quant_type": qtype, "scale": np.array(scale, dtype=np.float32),
                                        "zero_point": np.array(zero_point, dtype=dtype)}
                if "axis" in entry:
                    item["axis"] = int(entry["axis"])
                converted.append(item)
            if converted:
                out[name] = converted
    return out


def read(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{Path(path).name} is not a QNN quantization-overrides JSON file ({exc}).") from None
    return to_tensor_overrides(data)
