"""Read a safetensors header without trusting it: size limits, offsets inside the file."""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInputError

# The format's own limit is 100 MB; real headers of billion-parameter models are a few MB.
MAX_HEADER_BYTES = 100 * 2**20
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


def read_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file; InvalidInputError if it is not a sound one."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise InvalidInputError(f"{path.name} is too short to be a safetensors file; copy it again.")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or length > size - 8:
            raise InvalidInputError(
                f"{path.name} declares a {length:,}-byte header, larger than the file or the "
                "100 MB the format allows; the file is corrupt or not safetensors."
            )
        try:
            header = json.loads(fh.read(length))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInputError(f"{path.name} has an unreadable safetensors header; copy it again.") from None
    if not isinstance(header, dict):
        raise InvalidInputError(f"{path.name} has a malformed safetensors header.")
    data_size = size - 8 - length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            expected = prod(info["shape"]) * DTYPE_BYTES.get(info["dtype"], 1)
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(f"{path.name}: tensor {name[:60]!r} has a malformed entry.") from None
        if not 0 <= start <= end <= data_size or (info["dtype"] in DTYPE_BYTES and end - start != expected):
            raise InvalidInputError(
                f"{path.name} is truncated or corrupt: tensor {name[:60]!r} lies outside the file; copy it again."
            )
    return header


def parameter_count(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        for name, info in read_header(path).items():
            if name != "__metadata__":
                total += prod(info["shape"])
    return total


def main_dtype(paths: list[Path]) -> str | None:
    """The dtype holding most parameters ("F32", "BF16", ...), from the headers alone."""
    counts: dict[str, int] = {}
    for path in paths:
        for name, info in read_header(path).items():
            if name != "__metadata__":
                counts[info["dtype"]] = counts.get(info["dtype"], 0) + prod(info["shape"])
    return max(counts, key=counts.__getitem__) if counts else None
