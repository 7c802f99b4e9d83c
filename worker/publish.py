"""Moving a job's finished output into place and recording it, all or nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog import db
from catalog.errors import ConflictError
from catalog.files import remove_tree
from worker.context import JobContext


def publish(ctx: JobContext, staged: Path, final: Path, record: Callable[[db.Database], None],
            result: dict[str, Any]) -> None:
    """Rename `staged` to `final`, then in one transaction check the job is still running,
    record the rows and mark the job succeeded. Any failure removes `final` again, so a
    cancelled or crashed job leaves neither a row nor a file."""
    remove_tree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged), final)
    try:
        with db.connect() as conn:
            state = conn.scalar("SELECT state FROM jobs WHERE id = ?", [ctx.job.id])
            if state != "running":
                raise ConflictError(f"The job was {state} before its output could be recorded.")
            record(conn)
            conn.execute(
                "UPDATE jobs SET state='succeeded', ended_at=?, result=?, error=NULL WHERE id=?",
                [datetime.now(UTC), json.dumps(result, default=str), ctx.job.id])
    except BaseException:
        remove_tree(final)
        raise
