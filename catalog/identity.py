"""Ids that derive from content or recipe, so identical work is recognised as such."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(*parts: Any, length: int = 16) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(canonical_json(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:length]


def variant_id(
    parent_id: str | None,
    backend: str,
    conversion: str,
    options: dict[str, Any],
    toolkit_versions: dict[str, str],
) -> str:
    """A derived variant is the same variant when parent, recipe and toolkit versions agree."""
    return "v-" + digest(parent_id, backend, conversion, options, toolkit_versions)


def source_id(content_hash: str) -> str:
    return "s-" + content_hash[:16]


def new_job_id() -> str:
    return "j-" + secrets.token_hex(6)


def content_hash(files: list[tuple[str, str]]) -> str:
    """Hash of a set of (relative path, sha256) pairs: the same bytes give the same source.

    A single file is known by its bytes alone, so a renamed copy of a GGUF is still the same model.
    """
    if len(files) == 1:
        return digest([("", files[0][1])], length=64)
    return digest(sorted(files), length=64)
