"""Read and validate the metadata of a GGUF file.

Every failure is raised as `GGUFError` whose message is one sentence that says what is wrong
and what the user can do, because these messages are shown as-is in the app.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import struct
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import gguf

from backends.llamacpp.gguf_scan import ArrayField, GGUFScan, HeaderError, scan

logger = logging.getLogger(__name__)

# "GGUF" as the first four bytes; the header that follows is version (u32),
# tensor count (u64) and key/value count (u64).
_MAGIC = b"GGUF"
_HEADER_BYTES = 4 + 4 + 8 + 8


class GGUFError(ValueError):
    """A GGUF file cannot be used; the message is one user-facing sentence."""


@dataclass(frozen=True)
class GGUFMetadata:
    """What the catalog shows about a GGUF model file."""

    path: str
    file_size: int
    gguf_version: int
    architecture: str
    name: str | None
    quant_type: str | None
    parameter_count: int
    tensor_count: int
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    vocab_size: int | None
    tokenizer_model: str | None
    has_chat_template: bool
    chat_template: str | None
    license: str | None
    # modelcatalog.* keys a catalog wrote (variant, parent, recipe, versions): where it came from
    provenance: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gguf_package_version() -> str:
    try:
        return _dist_version("gguf")
    except PackageNotFoundError:  # gguf importable from a source tree, not installed
        return "unknown"


def _check_header(path: Path) -> int:
    """Cheap checks before memory-mapping: existence, size, magic. Returns the file size."""
    if not path.is_file():
        raise GGUFError(f"The file {path} does not exist; check the path or add the model again.")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    if head[:4] != _MAGIC:
        raise GGUFError(
            f"The file {path.name} is not a GGUF file (it does not start with the bytes 'GGUF'); "
            "choose a .gguf model file."
        )
    if size < _HEADER_BYTES:
        raise GGUFError(
            f"The file {path.name} is truncated ({size} bytes, shorter than a GGUF header); "
            "download or copy it again."
        )
    return size


def open_reader(path: str | os.PathLike[str]) -> gguf.GGUFReader:
    """Open a GGUF file with gguf.GGUFReader after validating it; raise GGUFError if unusable."""
    p = Path(path)
    size = _check_header(p)
    try:
        reader = gguf.GGUFReader(p, "r")
    except ValueError as exc:
        msg = str(exc)
        # The enum's own wording, e.g. "np.uint32(42) is not a valid GGMLQuantizationType": a tensor
        # type newer than the installed gguf package (llama.cpp adds types before gguf-py has them).
        if "GGMLQuantizationType" in msg:
            found = re.search(r"(\d+)\)?\s+is not a valid", msg)
            code = found.group(1) if found else "?"
            raise GGUFError(
                f"The file {p.name} uses tensor type {code}, which gguf {_gguf_package_version()} "
                "does not know; update the gguf package or pick a file quantized with a common type."
            ) from exc
        if "version" in msg:
            raise GGUFError(
                f"The file {p.name} has a GGUF version that gguf {_gguf_package_version()} cannot read "
                f"({msg}); update the gguf package or convert the model again."
            ) from exc
        raise _truncated_or_corrupt(p, size, exc) from exc
    except Exception as exc:  # IndexError, KeyError, OverflowError, UnicodeDecodeError, ...
        # GGUFReader has no error type of its own: on a cut-off or damaged file it fails
        # wherever its offsets first run past the data, with assorted numpy/struct errors.
        raise _truncated_or_corrupt(p, size, exc) from exc

    # The reader can succeed on a file cut inside the last tensor's data; check every tensor.
    needed = max((t.data_offset + t.n_bytes for t in reader.tensors), default=reader.data_offset)
    if needed > size:
        raise GGUFError(
            f"The file {p.name} is truncated ({size} of {needed} bytes present); download or copy it again."
        )
    return reader


def _truncated_or_corrupt(p: Path, size: int, exc: BaseException) -> GGUFError:
    # The exception's own words ("error", "unpack_from requires a buffer of 8 bytes") mean nothing
    # to a user: they go to the log, and the sentence says what is known.
    logger.info("reading %s as GGUF failed: %r", p, exc)
    return GGUFError(
        f"The file {p.name} could not be read as GGUF ({size:,} bytes): it is truncated or corrupt; "
        "download or copy it again."
    )


def _field(found: GGUFScan, key: str) -> Any:
    """A scalar or string field's value; None when absent or an array."""
    value = found.fields.get(key)
    return None if isinstance(value, ArrayField) else value


def known_architectures() -> set[str]:
    """Architecture names the installed gguf package (and so llama.cpp of that era) knows."""
    return set(gguf.MODEL_ARCH_NAMES.values())


def file_type_name(code: int | None) -> str | None:
    """general.file_type code -> llama.cpp's type name as llama-quantize spells it (Q4_K_M, F16...)."""
    if code is None:
        return None
    try:
        name = gguf.LlamaFileType(int(code)).name
    except ValueError:
        return f"unknown ({code})"
    for prefix in ("MOSTLY_", "ALL_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def check_file(path: str | os.PathLike[str]) -> None:
    """Refuse, with GGUFError's sentence, a file whose header, tensor types or length are wrong:
    the import's pre-flight, in milliseconds (the header only; no tensor data is read)."""
    _scan(Path(path))


def read_metadata(path: str | os.PathLike[str]) -> GGUFMetadata:
    """Validate a GGUF file and return its metadata; raise GGUFError with a sentence if unusable."""
    return _inspect(*_cache_key(path))[0]


def effective_type_histogram(path: str | os.PathLike[str]) -> dict[str, dict[str, float | int]]:
    """Per ggml tensor type: tensor count, element count and share of all weight elements.

    A file's nominal type (say Q4_K_M) is a recipe, not what its tensors hold: llama.cpp mixes
    types per tensor and falls back to other types for rows that are not a multiple of the
    block size, so this is what the model really stores. Sorted by share, largest first.
    """
    return {name: dict(entry) for name, entry in _inspect(*_cache_key(path))[1].items()}


def _cache_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        _check_header(p)  # raises the "does not exist" sentence
        raise
    return str(p.resolve()), st.st_size, st.st_mtime_ns


# The catalog asks for metadata and type histogram of the same file repeatedly; key on size and
# mtime so a replaced file is read again.
@functools.lru_cache(maxsize=32)
def _inspect(path: str, _size: int, _mtime_ns: int) -> tuple[GGUFMetadata, dict[str, dict[str, float | int]]]:
    found = _scan(Path(path))
    return _metadata(found, Path(path)), _histogram(found)


def _scan(p: Path) -> GGUFScan:
    """The header, fields and tensor infos (gguf_scan: milliseconds where GGUFReader takes seconds),
    validated as open_reader validates: known tensor types, every tensor inside the file."""
    size = _check_header(p)
    try:
        found = scan(p)
    except HeaderError as exc:
        raise GGUFError(f"The file {p.name} is truncated or corrupt: {exc}; download or copy it again.") from None
    except ValueError as exc:
        if "version" in str(exc):
            raise GGUFError(
                f"The file {p.name} has a GGUF version that gguf {_gguf_package_version()} cannot read "
                f"({exc}); update the gguf package or convert the model again."
            ) from exc
        raise _truncated_or_corrupt(p, size, exc) from exc
    except (IndexError, OverflowError, struct.error, OSError) as exc:
        raise _truncated_or_corrupt(p, size, exc) from exc
    needed = found.data_offset
    for t in found.tensors:
        try:
            kind = gguf.GGMLQuantizationType(t.type_code)
        except ValueError:
            raise GGUFError(
                f"The file {p.name} uses tensor type {t.type_code}, which gguf {_gguf_package_version()} "
                "does not know; update the gguf package or pick a file quantized with a common type."
            ) from None
        block, type_size = gguf.GGML_QUANT_SIZES[kind]
        needed = max(needed, found.data_offset + t.offset + t.n_elements // block * type_size)
    if needed > size:
        raise GGUFError(
            f"The file {p.name} is truncated ({size} of {needed} bytes present); download or copy it again."
        )
    return found


def _metadata(found: GGUFScan, p: Path) -> GGUFMetadata:
    arch = _field(found, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GGUFError(
            f"The file {p.name} has no general.architecture key, so no runtime can load it; "
            "convert the model again with a current convert_hf_to_gguf.py."
        )
    if arch not in known_architectures():
        raise GGUFError(
            f"The file {p.name} declares architecture '{arch}', which gguf {_gguf_package_version()} "
            "does not know; update gguf and llama-cpp-python or choose another model."
        )

    chat_template = _field(found, "tokenizer.chat_template")
    vocab_size = _field(found, f"{arch}.vocab_size")
    if vocab_size is None:
        # Most converters omit <arch>.vocab_size; the token list is the authoritative count.
        tokens = found.fields.get("tokenizer.ggml.tokens")
        vocab_size = tokens.length if isinstance(tokens, ArrayField) else None

    return GGUFMetadata(
        path=str(p),
        file_size=p.stat().st_size,
        gguf_version=found.version,
        architecture=arch,
        name=_field(found, "general.name"),
        quant_type=file_type_name(_field(found, "general.file_type")),
        parameter_count=sum(t.n_elements for t in found.tensors),
        tensor_count=len(found.tensors),
        context_length=_field(found, f"{arch}.context_length"),
        block_count=_field(found, f"{arch}.block_count"),
        embedding_length=_field(found, f"{arch}.embedding_length"),
        vocab_size=vocab_size,
        tokenizer_model=_field(found, "tokenizer.ggml.model"),
        has_chat_template=bool(chat_template),
        chat_template=chat_template or None,
        license=_field(found, "general.license"),
        provenance=_provenance(found),
    )


PROVENANCE_PREFIX = "modelcatalog."


def _provenance(header: GGUFScan) -> dict[str, str]:
    """The catalog's provenance keys: its own GGUF keys (llama-quantize writes them), else the
    JSON in general.description (convert_hf_to_gguf.py writes only general.* keys)."""
    found: dict[str, str] = {}
    description = _field(header, "general.description")
    if isinstance(description, str) and description.startswith("{"):
        try:
            parsed = json.loads(description)
        except ValueError:
            parsed = {}
        if isinstance(parsed, dict):
            found.update({k: str(v) for k, v in parsed.items() if k.startswith(PROVENANCE_PREFIX)})
    for key in header.fields:
        if key.startswith(PROVENANCE_PREFIX) and isinstance(value := _field(header, key), str):
            found[key] = value
    return found


def _histogram(found: GGUFScan) -> dict[str, dict[str, float | int]]:
    counts: dict[str, dict[str, int]] = {}
    for t in found.tensors:
        entry = counts.setdefault(gguf.GGMLQuantizationType(t.type_code).name, {"tensors": 0, "elements": 0})
        entry["tensors"] += 1
        entry["elements"] += t.n_elements
    total = sum(e["elements"] for e in counts.values()) or 1
    ordered = sorted(counts.items(), key=lambda kv: kv[1]["elements"], reverse=True)
    return {
        name: {"tensors": e["tensors"], "elements": e["elements"], "share": e["elements"] / total}
        for name, e in ordered
    }
