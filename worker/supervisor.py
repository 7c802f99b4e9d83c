"""The supervisor: one per data root, it takes queued jobs and runs each in a child process.

`python -m worker.supervisor` runs it in the foreground; `ensure_running()` starts one in the
background for the app. It exits when the process that started it dies (the app), killing its
children first, so no job outlives it unsupervised.
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

from catalog import config, jobs
from worker.proc import child_environment, die_with_parent, python

log = logging.getLogger(__name__)

POLL_S = 0.5


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


def spawn_child(job_id: str) -> subprocess.Popen[bytes]:
    """Start a job's child process in its own process group (so cancel can kill the group)."""
    log_file = open(config.jobs_dir() / job_id / "child.out", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [python(), "-m", "worker.child", job_id],
        cwd=config.PROJECT_DIR, env=child_environment(), stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=die_with_parent,
    )
    log_file.close()
    jobs.set_process(job_id, proc.pid)
    return proc


class Supervisor:
    def __init__(self, watch_parent: int | None = None) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.watch_parent = watch_parent
        self.stopping = False

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        """Kill every child's process group, then mark their jobs interrupted and clean up."""
        for proc in self.children.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.children.values():
            proc.wait()
        self.children.clear()
        jobs.reconcile_now()

    def step(self) -> None:
        for job_id, proc in list(self.children.items()):
            if proc.poll() is not None:
                del self.children[job_id]
        while True:
            job = jobs.claim("supervisor")
            if job is None:
                break
            log.info("starting %s job %s", job.kind, job.id)
            self.children[job.id] = spawn_child(job.id)

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
            while not self.stopping:
                if self.watch_parent and os.getppid() != self.watch_parent:
                    log.info("the app that started the supervisor is gone; stopping")
                    break
                try:
                    self.step()
                except Exception:  # noqa: BLE001 - a bad poll must not end supervision
                    log.exception("supervisor step failed")
                time.sleep(POLL_S)
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
