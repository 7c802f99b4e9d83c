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


# File-system errors a job meets where the catalog writes (its data root): what an admin does about them.
NOT_WRITABLE = {
    errno.EROFS: ("is on a read-only file system", "mount the data root read-write"),
    errno.EACCES: ("cannot be written by the user the catalog runs as",
                   "give that user write access to the data root"),
    errno.EPERM: ("cannot be written by the user the catalog runs as",
                  "give that user write access to the data root"),
}


def _not_writable(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError) or exc.errno not in NOT_WRITABLE:
        return None
    what, fix = NOT_WRITABLE[exc.errno]
    where = exc.filename or "A folder the job writes to"
    return f"{where} {what}, so the job could not write its output; an admin must {fix}, then retry the job."


def _first_words(exc: BaseException) -> str:
    """The first line of an error's text that is not a native library's check location
    ("Check 'false' failed at src/...:"), cut to fit a sentence."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = next((line for line in lines if not line.startswith("Check '") and " failed at " not in line), "")
    return said[:160].rstrip(".:") or type(exc).__name__


def explain(exc: BaseException) -> str:
    """One sentence: what went wrong and what to try."""
    if isinstance(exc, CatalogError) or getattr(exc, "user_message", False):
        return str(exc)
    if isinstance(exc, MemoryError):
        return KNOWN_FAILURES[1][1]
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return KNOWN_FAILURES[0][1]
    if (sentence := _not_writable(exc)) is not None:
        return sentence
    text = f"{type(exc).__name__}: {exc}".lower()
    for needle, advice in KNOWN_FAILURES:
        if needle in text:
            return advice
    return (f"The job stopped on an error the catalog does not recognise ({_first_words(exc)}); retry it once, and "
            "if it fails again, report it with the job log below.")


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
