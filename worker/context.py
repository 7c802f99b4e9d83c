"""What a job handler gets: its job, a work folder, ways to log and report progress, and the
only two ways its output reaches the catalog (`publish_variant` / `publish`, `record_result`).

Job code never opens the catalog itself: everything it records goes through this object, so a
job could later run on another machine with a context that sends the same calls over the wire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog import db, jobfiles
from catalog.records import Job
from catalog.results import add_result
from catalog.variants import NewVariant, find_variant, insert_variant, variant_dir
from worker.publish import Placement, publish

PUBLISH_FRACTION = 0.95
PUBLISH_STEP = "recording the output in the catalog"


@dataclass
class JobContext:
    job: Job

    @property
    def work_dir(self) -> Path:
        path = jobfiles.work_dir(self.job.id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def log_path(self) -> Path:
        return jobfiles.log_path(self.job.id)

    def log(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        jobfiles.append_log(self.job.id, f"[{stamp}] {message}")
        logging.getLogger("job").info(message)

    def progress(self, fraction: float, message: str = "") -> None:
        jobfiles.write_progress(self.job.id, fraction, message)

    def publish(self, staged: Path, record: Callable[[db.Database], Placement]) -> dict[str, Any]:
        """Record and place a staged output all or nothing (see worker.publish); `record` writes
        its rows with catalog functions on the connection it is given. The step is named first, so
        a job killed while it waits for the catalog's lock or moves its files is said to have
        stopped there (not in the step before, such as "reading metadata")."""
        self.progress(PUBLISH_FRACTION, PUBLISH_STEP)
        placement = publish(self.job.id, staged, record)
        for note in placement.notes:
            self.log(note)
        return placement.result

    def publish_variant(self, staged: Path, new: NewVariant, result: dict[str, Any]) -> dict[str, Any]:
        """Record a converted variant and move its staged files into its folder. A retry of a job
        whose twin already stored the same variant records nothing and keeps the stored files."""

        def record(conn: db.Database) -> Placement:
            stored = find_variant(new.id)
            if stored is not None and stored.state == "available":
                return Placement(dict(result, existing=True), notes=[f"variant {new.id} was already stored"])
            insert_variant(conn, new)
            return Placement(result, final=variant_dir(new.source_id, new.id))

        return self.publish(staged, record)

    def record_result(self, **fields: Any) -> str:
        """Store one benchmark result of this job; returns its id."""
        with db.connect() as conn:
            return add_result(conn, job_id=self.job.id, **fields)
