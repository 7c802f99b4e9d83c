"""Turn an exception from a toolkit into one sentence a user can act on."""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from catalog.errors import CatalogError
from catalog.files import folder_size
from catalog.records import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolkitFacts:
    """What the worker's reports need to know about the toolkits, which the worker does not
    import: handed in by the caller (worker/toolkits.py reads them from the registry)."""

    libraries: Mapping[str, str] = field(default_factory=dict)  # a native library's import name -> its name
    steps: Mapping[str, str] = field(default_factory=dict)  # a progress prefix ("model builder") -> its step
    disk_factors: Mapping[str, float] = field(default_factory=dict)  # conversion key -> output/input size


NO_TOOLKITS = ToolkitFacts()

# Known failure text -> what to tell the user. Checked in order, case-insensitively.
KNOWN_FAILURES: list[tuple[str, str]] = [
    ("no space left on device", "The disk filled up while writing the output; free space in the "
     "data root (Storage page) and retry."),
    ("out of memory", "The toolkit ran out of memory; close other jobs or pick a smaller model "
     "or precision, then retry."),
    ("cannot allocate memory", "The toolkit ran out of memory; close other jobs or pick a smaller "
     "model or precision, then retry."),
    ("no module named", "A toolkit this job needs is not installed; run the setup command from the "
     "README, then retry."),
    ("401", "The Hugging Face Hub refused access (401); log in with a token that can read the repo."),
    ("403", "The Hugging Face Hub refused access (403); accept the model's license on the Hub first."),
]


def explain(exc: BaseException) -> str:
    """One sentence: what went wrong and what to try."""
    if isinstance(exc, CatalogError) or getattr(exc, "user_message", False):
        return str(exc)
    if isinstance(exc, MemoryError):
        return KNOWN_FAILURES[1][1]
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return KNOWN_FAILURES[0][1]
    text = f"{type(exc).__name__}: {exc}".lower()
    for needle, advice in KNOWN_FAILURES:
        if needle in text:
            return advice
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"The job failed unexpectedly ({type(exc).__name__}: {first}); see the log below."


def estimated_disk_need(job: Job, facts: ToolkitFacts = NO_TOOLKITS) -> int:
    """Bytes the job's output needs, by the same estimate as pre-flight (a conversion's disk
    factor times its input) or, for an import, the size of what it copies. 0 if unknown."""
    recipe = job.recipe
    try:
        if job.kind == "convert" and recipe.get("conversion") and recipe.get("input_variant_id"):
            from catalog.variants import get_variant

            factor = facts.disk_factors.get(recipe["conversion"])
            return int(get_variant(recipe["input_variant_id"]).size_bytes * factor) if factor else 0
        if job.kind == "import" and recipe.get("path") and Path(recipe["path"]).exists():
            return folder_size(Path(recipe["path"]))
    except (CatalogError, OSError):
        log.exception("could not estimate the disk job %s needs", job.id)
    return 0
