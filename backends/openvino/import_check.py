"""Importing OpenVINO IR (.xml + .bin, with or without tokenizer IRs): recognised by the IR's root
element, checked before any job exists, and described from the XML alone.

The XML is parsed with defusedxml, which refuses entity declarations (no billion laughs, no
external entities). Every constant's data must lie inside the .bin: a missing or truncated .bin is
refused in one sentence rather than failing later inside the runtime."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from backends.openvino.runtime_runner import TOKENIZER_IRS
from catalog.errors import InvalidInputError

MAX_XML_BYTES = 256 * 2**20
# Weight element types -> the precision label of the variant (the narrowest one present wins).
PRECISIONS = (("u4", "INT4"), ("i4", "INT4"), ("nf4", "NF4"), ("f4e2m1", "MXFP4"), ("u8", "INT8"), ("i8", "INT8"),
              ("f16", "F16"), ("bf16", "BF16"), ("f32", "F32"))


HEAD_BYTES = 64 * 2**10  # where an IR's root element must start: after the XML declaration, comments, a DTD
# What may come before the root element: a declaration or processing instruction, a comment, a
# DOCTYPE (with an internal subset, which _parse then refuses with its own sentence), whitespace.
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[[^\]]*\])*>)", re.DOTALL)
_NET_START = re.compile(rb"\s*<net[\s/>]")


def _is_ir(xml: Path) -> bool:
    """The file's root element is <net>, wherever the prolog ends in its first HEAD_BYTES (a long
    licence comment may push <net past byte 512). Only regular files are opened."""
    try:
        if not xml.is_file():
            return False
        with open(xml, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return False
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark
    while (item := _PROLOG_ITEM.match(head, pos)) is not None and item.end() > pos:
        pos = item.end()
    return _NET_START.match(head, pos) is not None


def model_xml(path: Path) -> Path | None:
    """The model's .xml in a file or folder (never a tokenizer IR), or None."""
    if path.is_file():
        return path if path.suffix.lower() == ".xml" and _is_ir(path) else None
    if not path.is_dir():
        return None
    candidates = [p for p in sorted(path.glob("*.xml")) if p.name not in TOKENIZER_IRS and _is_ir(p)]
    return candidates[0] if len(candidates) == 1 else next((p for p in candidates if p.name == "openvino_model.xml"),
                                                           None)


def recognise(path: Path) -> bool:
    return model_xml(path) is not None


def keeps(path: Path) -> bool:
    """An IR's weights file: raw tensors, never a pickle, though PyTorch's pickles share the suffix."""
    return path.suffix.lower() == ".bin" and _is_ir(path.with_suffix(".xml"))


def _parse(xml: Path) -> Any:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import parse

    if xml.stat().st_size > MAX_XML_BYTES:
        raise InvalidInputError(f"{xml.name} is larger than {MAX_XML_BYTES // 2**20} MB; an IR's XML holds only the "
                                "graph, so this is not one.")
    try:
        return parse(str(xml), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise InvalidInputError(f"{xml.name} declares entities or a DTD ({type(exc).__name__}), which an OpenVINO IR "
                                "never needs; it was refused.") from None
    except (ParseError, UnicodeDecodeError) as exc:  # a damaged file
        raise InvalidInputError(f"{xml.name} is not well-formed XML ({str(exc)[:120]}); export the IR again.") from None


def describe_ir(xml: Path, model: bool = True) -> dict[str, Any]:
    """Inputs, outputs, weight types and the .bin's extent, from the XML; refuses an IR with no
    layers or no output, and a missing or short .bin (a model's .bin always: OpenVINO writes one,
    empty when there are no weights; a tokenizer IR's when it has constants)."""
    root = _parse(xml)
    if root.tag != "net":
        raise InvalidInputError(f"{xml.name} is XML but not an OpenVINO IR (its root is <{root.tag}>, not <net>).")
    if root.find("layers") is None or root.find("layers/layer") is None:
        raise InvalidInputError(f"{xml.name} is an OpenVINO IR with no layers, so there is no model in it; export "
                                "the model again.")
    inputs, outputs, weights, end = [], [], Counter(), 0
    for layer in root.iter("layer"):
        kind, data = layer.get("type"), layer.find("data")
        if kind == "Parameter" and data is not None:
            inputs.append({"name": layer.get("name"), "shape": data.get("shape"), "type": data.get("element_type")})
        elif kind == "Result":
            outputs.append({"name": layer.get("name")})
        elif kind == "Const" and data is not None:
            try:
                offset, size = int(data.get("offset", 0)), int(data.get("size", 0))
            except ValueError:
                raise InvalidInputError(f"{xml.name} names a constant at an offset that is not a number; export the "
                                        "IR again.") from None
            end = max(end, offset + size)
            weights[data.get("element_type", "?")] += size
    if not outputs:
        raise InvalidInputError(f"{xml.name} has no Result layer, so the model gives no output; export the model "
                                "again.")
    binary = xml.with_suffix(".bin")
    if (end or model) and not binary.is_file():
        raise InvalidInputError(f"{xml.name} has no {binary.name} beside it; import the .xml together with its .bin.")
    have = binary.stat().st_size if binary.is_file() else 0
    if have < end:
        raise InvalidInputError(f"{binary.name} is {have:,} bytes but {xml.name} reads up to byte {end:,}; the .bin is "
                                "truncated or belongs to another model.")
    return {"inputs": inputs, "outputs": outputs, "weight_bytes": dict(weights), "bin_bytes": have,
            "ir_version": root.get("version"), "name": root.get("name")}


def precision_of(weight_bytes: dict[str, int]) -> str:
    present = {t for t, n in weight_bytes.items() if n > 0}
    return next((label for t, label in PRECISIONS if t in present), "unknown")


def check(path: Path) -> Path:
    from catalog.files import list_model_files

    xml = model_xml(path)
    if xml is None:  # recognise() said yes, so a folder with several model IRs
        raise InvalidInputError(f"{path.name} holds more than one model IR; import one .xml (with its .bin).")
    describe_ir(xml)
    for ir in [xml.parent / t for t in TOKENIZER_IRS if (xml.parent / t).is_file()]:
        describe_ir(ir, model=False)
    if path.is_dir():
        list_model_files(path)  # refuses links out of the folder now, not inside the job
    return path if path.is_dir() else _single_ir_folder(xml)


def _single_ir_folder(xml: Path) -> Path:
    """A lone .xml is imported with its .bin, so its folder is imported; only when that folder
    holds nothing but this IR (and its tokenizer IRs and config files), never a stranger's files."""
    own = {xml.name, xml.with_suffix(".bin").name, *TOKENIZER_IRS, *(t.replace(".xml", ".bin") for t in TOKENIZER_IRS)}
    others = [p.name for p in xml.parent.iterdir() if p.name not in own and p.suffix.lower() in (".xml", ".bin")]
    if others:
        raise InvalidInputError(f"{xml.name} shares its folder with other models' files ({others[0]}); put the .xml "
                                "and its .bin in a folder of their own and import that folder.")
    return xml.parent


def describe(staged: Path, meta: Any, recipe: dict[str, Any], license_default: str | None
             ) -> tuple[Any, str, str, dict[str, Any]]:
    xml = model_xml(staged)
    if xml is None:
        raise InvalidInputError("The imported files hold no OpenVINO IR.")
    facts = describe_ir(xml)
    has_tokenizer = all((staged / t).is_file() for t in TOKENIZER_IRS)
    names = {i["name"] for i in facts["inputs"]}
    if has_tokenizer or {"input_ids", "beam_idx"} <= names:
        meta.task = "text-generation"
    elif "pixel_values" in names:
        meta.task = "image-classification"
    elif "input_ids" in names:
        meta.task = "feature-extraction"
    meta.architecture = facts["name"] or "openvino"
    meta.param_count = None
    meta.license = license_default
    return meta, "openvino", precision_of(facts["weight_bytes"]), dict(facts, genai_ready=has_tokenizer)
