"""Starting a job's child process (`python -m worker.child JOB`), the same way on this machine and
on a cluster worker."""

from __future__ import annotations

import subprocess

from catalog import config, jobs
from worker.proc import child_environment, die_with_parent, python


def spawn_child(job_id: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a job's child process in its own process group (so cancel can kill the group);
    extra_env: what a cluster worker's child needs besides (the head's gateway address)."""
    log_file = open(config.jobs_dir() / job_id / "child.out", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [python(), "-m", "worker.child", job_id],
        cwd=config.PROJECT_DIR, env=child_environment() | (extra_env or {}), stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=die_with_parent,
    )
    log_file.close()
    jobs.set_process(job_id, proc.pid)
    return proc
