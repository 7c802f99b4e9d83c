"""The supervisor: one per data root, it takes queued jobs and hands each to its executor.

`python -m worker.supervisor` runs it in the foreground; `ensure_running()` starts one in the
background for the app. Its executor (worker/executor.py) runs each job: in a child process
here, or as a task on a Ray cluster when the data root's settings say so. It exits when the
process that started it dies (the app), stopping its jobs first, so no job outlives it
unsupervised.

Idle, it costs almost nothing: every TICK_S it only checks its children's exit statuses and the
mtime of the wake file that submitting, retrying and ending a job touch. It opens the catalog
(about 30 ms of CPU each time, which at two polls a second was 6% of a core) only when one of
those changed, or every FALLBACK_S for what no one announces (a lease that ran out elsewhere).
When a child dies from a signal, it records the crash (worker/crash.py).
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from catalog import config, jobfiles, jobs
from worker.executor import Executor, executor_for_settings
from worker.proc import child_environment, python

log = logging.getLogger(__name__)

TICK_S = 0.5
FALLBACK_S = 30.0


def lock_path() -> Path:
    return config.data_root() / "supervisor.lock"


def is_running() -> bool:
    """True when some process holds the supervisor lock for this data root."""
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _stat_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class Supervisor:
    def __init__(self, watch_parent: int | None = None, executor: Executor | None = None) -> None:
        self._executor = executor  # made in serve(), once this process holds the lock
        self.watch_parent = watch_parent
        self.stopping = False

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = executor_for_settings()
        return self._executor

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        """Stop every running job, then mark them interrupted and clean up."""
        self.executor.shutdown()
        jobs.reconcile_now()  # killed with the supervisor: interrupted, not crashed

    def reap(self) -> bool:
        """Collect jobs that ended. True if any ended (a slot is free)."""
        return self.executor.reap()

    def step(self) -> None:
        """Reap, stop what was cancelled, then start every queued job the limits allow."""
        self.reap()
        self.executor.sync()
        while True:
            job = jobs.claim(self.executor.runner)
            if job is None:
                break
            log.info("starting %s job %s", job.kind, job.id)
            self.executor.start(job)

    def _loop(self) -> None:
        wake = jobfiles.wake_path()
        seen: int | None = None
        next_full = 0.0
        while not self.stopping:
            if self.watch_parent and os.getppid() != self.watch_parent:
                log.info("the app that started the supervisor is gone; stopping")
                break
            stamp = _stat_ns(wake)  # read before the step: a touch during it wakes the next tick
            ended = self.reap()
            self.executor.tick()
            if ended or stamp != seen or time.monotonic() >= next_full:
                seen = stamp
                try:
                    self.step()
                except Exception:  # noqa: BLE001 - a bad poll must not end supervision
                    log.exception("supervisor step failed")
                next_full = time.monotonic() + FALLBACK_S
            time.sleep(TICK_S)

    def serve(self) -> None:
        fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("a supervisor already runs for %s", config.data_root())
            return
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("supervisor %s serving %s", os.getpid(), config.data_root())
        try:
            self._loop()
        finally:
            self.shutdown()
            os.close(fd)


def ensure_running() -> bool:
    """Start a background supervisor for this data root unless one is running.

    It watches this process: when the app exits, so does the supervisor. Returns True if
    one was started.
    """
    if is_running():
        return False
    out = open(config.data_root() / "supervisor.log", "ab")  # noqa: SIM115
    subprocess.Popen(
        [python(), "-m", "worker.supervisor", "--watch-parent", str(os.getpid())],
        cwd=config.PROJECT_DIR, env=child_environment(), stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    for _ in range(100):  # wait until it holds its lock, so a second call does not start another
        if is_running():
            break
        time.sleep(0.05)
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor %(message)s")
    parent = None
    if "--watch-parent" in sys.argv:
        parent = int(sys.argv[sys.argv.index("--watch-parent") + 1])
    config.apply_offline_environment()
    Supervisor(watch_parent=parent).serve()


if __name__ == "__main__":
    main()
