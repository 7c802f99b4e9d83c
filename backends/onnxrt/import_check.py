"""Reading ONNX models for import: a single .onnx file, a model with external data, or an ONNX
Runtime GenAI folder (genai_config.json + its decoder .onnx).

`describe_onnx` reads the graph without its weights (inputs, outputs, opset, sizes);
`check_onnx` also runs the ONNX checker. Both raise InvalidInputError with one sentence. External
data is where an ONNX file can reach outside its folder (a location is a path relative to the
model), so every location is checked before anything opens it: absolute paths, paths that climb
out of the folder and links that lead out are refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from catalog.errors import InvalidInputError

log = logging.getLogger(__name__)

GENAI_CONFIG = "genai_config.json"


def _model_file(path: Path) -> tuple[Path, dict[str, Any] | None]:
    """The .onnx file to read and, for a GenAI folder, its genai_config.json."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".onnx":
            raise InvalidInputError(f"{path.name} is not an .onnx file; import a .onnx file or a folder holding one.")
        return path, None
    if not path.is_dir():
        raise InvalidInputError(f"{path.name} does not exist; check the path and try again.")
    if (path / GENAI_CONFIG).is_file():
        try:
            config = json.loads((path / GENAI_CONFIG).read_text())
            name = config["model"]["decoder"]["filename"]
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(f"The {GENAI_CONFIG} in {path.name} is not a valid ONNX Runtime GenAI "
                                    "config (no model.decoder.filename).") from None
        model = _inside(path, name, "decoder file")
        if not model.is_file():
            raise InvalidInputError(f"The decoder {name} named in {GENAI_CONFIG} is missing from {path.name}.")
        return model, config
    candidates = sorted(path.glob("*.onnx"))
    if len(candidates) != 1:
        raise InvalidInputError(f"{path.name} holds {len(candidates)} .onnx files and no {GENAI_CONFIG}; import "
                                "the one model file you mean.")
    return candidates[0], None


def _inside(folder: Path, location: str, what: str) -> Path:
    """folder/location, refusing absolute locations and any that resolve outside folder."""
    if not location or PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute() \
            or PureWindowsPath(location).drive:
        raise InvalidInputError(f"The {what} location {location!r} is absolute; only paths inside the model's "
                                "folder are accepted.")
    target = (folder / location).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise InvalidInputError(f"The {what} location {location!r} leads outside the model's folder; it was "
                                "refused.")
    return target


def _load_graph(model_file: Path):
    """The model proto without external weights; one sentence if the file is not a whole model."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(model_file), load_external_data=False)
    except (DecodeError, ValueError, OSError) as exc:  # a cut file is "Wire format was corrupt"
        log.info("could not parse %s: %s", model_file, exc)
        raise InvalidInputError(f"{model_file.name} is not a complete ONNX model (it may be truncated); "
                                "upload it again.") from None
    if not model.graph.node and not model.graph.output:
        # protobuf parses many byte strings (an empty or cut file) as an empty message
        raise InvalidInputError(f"{model_file.name} is not a complete ONNX model (it may be truncated); "
                                "upload it again.")
    return model


def _tensors(graph) -> Iterator[Any]:
    """Every tensor proto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _external_files(model, folder: Path) -> dict[str, int]:
    """External data files (relative name -> size), after checking every location and range."""
    from onnx import TensorProto

    files: dict[str, int] = {}
    for tensor in _tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = _inside(folder, location, "external data")
        if not target.is_file():
            raise InvalidInputError(f"The external data file {location} of tensor {tensor.name} is missing; "
                                    "import the model's whole folder.")
        size = target.stat().st_size
        end = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        if end > size:
            raise InvalidInputError(f"The external data file {location} is shorter than tensor {tensor.name} "
                                    "needs (truncated?); import it again.")
        files[location] = size
    return files


def _value_info(values) -> list[dict[str, Any]]:
    from onnx import TensorProto

    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]
        out.append({"name": v.name, "type": TensorProto.DataType.Name(t.elem_type).lower() if t.elem_type else "?",
                    "shape": shape})
    return out


def describe_onnx(path: Path) -> dict[str, Any]:
    """Inputs, outputs, opset and sizes of an ONNX file or folder, without loading its weights."""
    model_file, genai = _model_file(Path(path))
    model = _load_graph(model_file)
    external = _external_files(model, model_file.parent)
    params = 0
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        params += count
    facts: dict[str, Any] = {
        "format": "onnx-genai" if genai is not None else "onnx",
        "model_file": model_file.relative_to(Path(path).resolve()).as_posix() if genai is not None
        else model_file.name,
        "ir_version": model.ir_version, "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": {op.domain or "ai.onnx": op.version for op in model.opset_import},
        "inputs": _value_info(model.graph.input), "outputs": _value_info(model.graph.output),
        "ops": sorted({n.op_type for n in model.graph.node}), "parameters": params,
        "external_data": sorted(external),
        "size_bytes": model_file.stat().st_size + sum(external.values()),
    }
    if genai is not None:
        m = genai.get("model", {})
        facts["genai"] = {"type": m.get("type"), "context_length": m.get("context_length"),
                          "vocab_size": m.get("vocab_size"),
                          "num_hidden_layers": m.get("decoder", {}).get("num_hidden_layers")}
    return facts


def guess_task(inputs: list[dict[str, Any]]) -> str | None:
    """The task of a plain ONNX graph, from its inputs: token ids without a KV cache is an encoder,
    one 4-D input an image classifier; anything else stays unknown."""
    names = {i["name"] for i in inputs}
    if "input_ids" in names and not any(n.startswith("past_key_values") for n in names):
        return "feature-extraction"
    if len(inputs) == 1 and len(inputs[0]["shape"]) == 4:
        return "image-classification"
    return None


QUANTIZED_INT8_OPS = {"QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
                      "ConvInteger"}


def guess_precision(ops: list[str]) -> str:
    """INT4 (MatMulNBits), INT8 (quantized ops) or float, from the graph's operators."""
    if "MatMulNBits" in ops:
        return "INT4"
    return "INT8" if QUANTIZED_INT8_OPS & set(ops) else "float"


def check_onnx(path: Path) -> dict[str, Any]:
    """describe_onnx, then the ONNX checker over the file (by path, so external data is read too)."""
    import onnx

    from backends.onnxrt.schemas import register_ort_schemas

    facts = describe_onnx(path)
    model_file, _ = _model_file(Path(path))
    register_ort_schemas()
    try:
        onnx.checker.check_model(str(model_file))
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160].rstrip(".")
        raise InvalidInputError(f"{model_file.name} fails the ONNX checker ({first}).") from None
    return facts


# ------------------------------------------------------------------------------ the registry's import hooks


def recognise(path: Path) -> bool:
    """A .onnx file, an ONNX Runtime GenAI folder, or a folder of .onnx files without config.json."""
    if path.is_file():
        return path.suffix.lower() == ".onnx"
    return (path / "genai_config.json").is_file() or (
        not (path / "config.json").is_file() and any(path.glob("*.onnx")))


def check(path: Path) -> Path:
    """One sentence for a truncated model or external data that escapes; the path to import (a
    graph whose weights live beside it is imported with its folder)."""
    from catalog.files import list_model_files

    facts = check_onnx(path)
    if path.is_file() and facts["external_data"]:
        path = path.parent  # the weights live beside the graph: import the folder
    list_model_files(path if path.is_dir() else path.parent)  # refuses links out of the folder now
    return path


def describe(staged: Path, meta: Any, recipe: dict[str, Any], license_default: str | None
             ) -> tuple[Any, str, str, dict[str, Any]]:
    facts = describe_onnx(staged)
    genai = facts.get("genai") or {}
    meta.architecture = genai.get("type") or facts["producer"] or "onnx"
    meta.task = "text-generation" if genai else guess_task(facts["inputs"])
    meta.param_count = facts["parameters"]
    meta.context_length = genai.get("context_length")
    return meta, facts["format"], guess_precision(facts["ops"]), facts
