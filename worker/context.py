"""What a job handler gets: its job, a work folder, and ways to log and report progress."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from catalog import jobfiles
from catalog.records import Job


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
