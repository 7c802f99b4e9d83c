"""Where the supervisor's claimed jobs run: the Executor interface and the local one.

The supervisor claims jobs from the catalog under its limits and hands each to its executor;
`executor_for_settings` picks one from the data root's settings (`executor`: "local", the
default, or "ray" with `ray_address`, see worker/ray_executor.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Protocol

from catalog import config
from catalog.records import Job
from worker import crash, toolkits
from worker.spawn import spawn_child

log = logging.getLogger(__name__)

LOCAL_RUNNER = "supervisor"


class Executor(Protocol):
    runner: str  # what claimed jobs record as their runner

    def start(self, job: Job) -> None:
        """Run a job the supervisor has just claimed."""

    def reap(self) -> bool:
        """Collect jobs that ended and record what their processes could not; True if any did."""

    def tick(self) -> None:
        """Called every supervisor tick (cheap: no catalog access unless something changed)."""

    def sync(self) -> None:
        """Called when the catalog changed: stop the jobs a user cancelled meanwhile."""

    def shutdown(self) -> None:
        """Stop every job it runs; they are then marked interrupted."""


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    oom_before: int  # the kernel's out-of-memory kill count when it started


class LocalExecutor:
    """Each job in a child process of the supervisor, on this machine."""

    runner = LOCAL_RUNNER

    def __init__(self) -> None:
        self.children: dict[str, Child] = {}

    def start(self, job: Job) -> None:
        oom_before = crash.oom_kill_count()
        self.children[job.id] = Child(spawn_child(job.id), oom_before)

    def reap(self) -> bool:
        """A child that died from a signal is recorded as a crash."""
        ended = False
        for job_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self.children[job_id]
            ended = True
            try:
                crash.handle_child_exit(job_id, child.proc.pid, code, child.oom_before, toolkits.facts())
            except Exception:  # noqa: BLE001 - reconcile still ends the job as interrupted
                log.exception("could not record how job %s ended (exit %s)", job_id, code)
        return ended

    def tick(self) -> None:
        pass  # the children beat their own heartbeats; cancel kills their process groups itself

    def sync(self) -> None:
        pass

    def shutdown(self) -> None:
        for child in self.children.values():
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for child in self.children.values():
            child.proc.wait()
        self.children.clear()


def executor_for_settings() -> Executor:
    settings = config.load_settings()
    if settings.executor == "ray":
        from worker.ray_executor import RayExecutor

        return RayExecutor(settings.ray_address)
    return LocalExecutor()
