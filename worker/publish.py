"""Moving a job's finished output into place and recording it, all or nothing.

Recording and moving happen under the catalog lock, in one transaction: no other process can
record or place the same output in between, so two jobs that made the same bytes (two people
importing one model at once) never remove each other's files. The record step decides, after
looking at the catalog under that lock, whether the output is new, already stored, or restores
a stored variant whose files went missing.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import db, jobs
from catalog.errors import ConflictError
from catalog.files import remove_tree

log = logging.getLogger(__name__)


@dataclass
class Placement:
    """Where a job's staged output goes, decided by its record step under the catalog lock."""

    result: dict[str, Any]
    final: Path | None = None   # a new variant's folder: the staged folder is renamed to it
    restore: Path | None = None  # a stored variant's folder whose files are missing: staged files go in
    notes: list[str] = field(default_factory=list)  # sentences for the job's log


@dataclass
class _Owned:
    """The folder this job moved into place, known by its inode, so that undoing removes this
    job's own folder and never one another job placed at the same path."""

    path: Path | None = None
    inode: int | None = None

    def take(self, path: Path) -> None:
        self.path, self.inode = path, path.stat().st_ino

    def remove(self) -> None:
        if self.path is None:
            return
        try:
            if self.path.stat().st_ino != self.inode:
                return
        except OSError:
            return
        remove_tree(self.path)


def publish(job_id: str, staged: Path, record: Callable[[db.Database], Placement]) -> Placement:
    """In one transaction under the catalog lock: check the job is still running, let `record`
    write the rows and say where the files go, move them there, and mark the job succeeded.
    Any failure removes what this job placed, so a cancelled or crashed job leaves neither a
    row nor a file; a killed one leaves a folder that its recorded target lets cleanup find."""
    owned = _Owned()
    try:
        with db.connect() as conn:
            state = jobs.state_of(conn, job_id)
            if state != "running":
                raise ConflictError(f"The job was {state} before its output could be recorded.")
            placement = record(conn)  # raises before any file moves when the rows cannot be written
            _place(staged, placement, owned)
            jobs.mark_succeeded(conn, job_id, placement.result)
    except BaseException:
        owned.remove()
        raise
    return placement


def _place(staged: Path, placement: Placement, owned: _Owned) -> None:
    if placement.final is not None:
        final = placement.final
        if final.exists():
            # The record step has just inserted this variant's row under the lock, so no row
            # owns this folder: a killed job left it, with the same recipe's output.
            log.warning("replacing an unrecorded folder a killed job left at %s", final)
            remove_tree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), final)
        owned.take(final)
    elif placement.restore is not None:
        # The same bytes as the recorded files (the record step compared hashes): a failure
        # half way leaves only correct files, so there is nothing to undo.
        for path in sorted(p for p in staged.rglob("*") if p.is_file()):
            target = placement.restore / path.relative_to(staged)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)  # replaces the damaged or missing file
