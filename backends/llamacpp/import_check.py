"""Importing a GGUF: recognised by its suffix, checked before any job exists (magic bytes, then
the whole header: its counts, tensor types and length against the file, and the first file's
metadata), and described from its own metadata (name, architecture, size, quant type, license)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.errors import InvalidInputError
from catalog.sources import SourceMeta

SUFFIX = ".gguf"


def recognise(path: Path) -> bool:
    """A .gguf file, or a folder holding one that is not a Hugging Face folder."""
    if path.is_file():
        return path.suffix.lower() == SUFFIX
    return path.is_dir() and not (path / "config.json").is_file() and any(path.glob(f"*{SUFFIX}"))


def check(path: Path) -> Path:
    """The header of every file is read here, in milliseconds, so a damaged or hostile one (a
    tensor count no file could hold, a cut file) is refused in one sentence with no job made; the
    first file (the one describe reads) must also name an architecture gguf knows."""
    from backends.llamacpp.gguf_meta import GGUFError, check_file, read_metadata

    files = sorted(path.glob(f"*{SUFFIX}")) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise InvalidInputError(
                    f"{file.name} is not a GGUF file (it does not start with 'GGUF'); choose a .gguf model file.")
    try:
        for file in files:
            check_file(file)
        read_metadata(files[0])
    except GGUFError as exc:
        raise InvalidInputError(str(exc)) from None
    return path


def describe(staged: Path, meta: SourceMeta, recipe: dict[str, Any], license_default: str | None
             ) -> tuple[SourceMeta, str, str, dict[str, Any]]:
    from backends.llamacpp.gguf_meta import GGUFError, read_metadata

    first = sorted(staged.glob(f"*{SUFFIX}"))[0]
    try:
        info = read_metadata(first)
    except GGUFError as exc:
        raise InvalidInputError(str(exc)) from None
    meta.name = recipe.get("name") or info.name or first.stem
    meta.architecture = info.architecture
    meta.task = "text-generation"
    meta.param_count = info.parameter_count
    meta.context_length = info.context_length
    meta.license = info.license or license_default
    extra = {k: v for k, v in info.to_dict().items() if k not in ("path",)}
    return meta, "gguf", info.quant_type or "unknown", extra
