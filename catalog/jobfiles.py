"""A job's folder: its live log, progress and heartbeat, and its temporary work area.

Frequent updates go to these files, not to the database, so a chatty job never competes
with the app for the catalog lock.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from catalog import config


def job_dir(job_id: str) -> Path:
    path = config.jobs_dir() / job_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def work_dir(job_id: str) -> Path:
    """Where a job writes its output before it is moved into place."""
    return job_dir(job_id) / "work"


def log_path(job_id: str) -> Path:
    return job_dir(job_id) / "log.txt"


def append_log(job_id: str, line: str) -> None:
    with open(log_path(job_id), "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


def read_log(job_id: str, tail_lines: int | None = None) -> str:
    path = config.jobs_dir() / job_id / "log.txt"
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    if tail_lines:
        text = "\n".join(text.splitlines()[-tail_lines:])
    return text


def write_progress(job_id: str, fraction: float, message: str = "") -> None:
    path = job_dir(job_id) / "progress.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fraction": max(0.0, min(1.0, fraction)), "message": message,
                               "updated": time.time()}))
    tmp.replace(path)


def read_progress(job_id: str) -> dict[str, Any]:
    path = config.jobs_dir() / job_id / "progress.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"fraction": 0.0, "message": ""}


def write_node(job_id: str, node: dict[str, Any]) -> None:
    """Where a job runs, when that is another machine (a Ray worker): node_id, node_ip, hostname."""
    (job_dir(job_id) / "node.json").write_text(json.dumps(node))


def read_node(job_id: str) -> dict[str, Any] | None:
    """Where a job on another machine runs or ran, or None for a job of this machine."""
    try:
        return json.loads((config.jobs_dir() / job_id / "node.json").read_text())
    except (OSError, ValueError):
        return None


def child_output_path(job_id: str) -> Path:
    """The job process's own stdout and stderr: what native libraries print before they crash."""
    return job_dir(job_id) / "child.out"


def read_tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last lines of a file that may be large (a tool's output), reading only its end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wake_path() -> Path:
    return config.jobs_dir() / "wake"


def notify_supervisor() -> None:
    """Tell an idle supervisor that jobs changed (one was queued, one ended): it checks the
    catalog when this file's mtime changes instead of opening the catalog twice a second."""
    try:
        path = wake_path()
        path.touch()
        # An explicit time keeps every nanosecond; the kernel's own clock for mtimes is coarse
        # (a few ms), and two touches in one tick would look like one.
        now = time.time_ns()
        os.utime(path, ns=(now, now))
    except OSError:  # a full or read-only disk: the supervisor's slow poll still finds the job
        pass


def touch_heartbeat(job_id: str) -> None:
    path = job_dir(job_id) / "heartbeat"
    path.touch()
    os.utime(path)


def heartbeat_age(job_id: str) -> float | None:
    path = config.jobs_dir() / job_id / "heartbeat"
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def rotate_log(job_id: str, attempt: int) -> None:
    """Keep a retried job's earlier log beside the new one."""
    path = log_path(job_id)
    if path.exists():
        path.rename(path.with_name(f"log.attempt{attempt}.txt"))
    for name in ("progress.json", "heartbeat"):
        (job_dir(job_id) / name).unlink(missing_ok=True)
