"""Run a job from the CLI or a test without the supervisor, under the same limits; with a
cluster executor, make sure a supervisor runs and wait for it to run the job there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from catalog import config, jobfiles, jobs
from catalog.records import Job
from worker import crash, toolkits
from worker.spawn import spawn_child
from worker.supervisor import ensure_running

log = logging.getLogger(__name__)

# How often a wait on a job that another process runs checks that process's lease (each check
# opens the catalog: a few ms of CPU that a benchmark on the other core would feel).
RECONCILE_S = 2.0


def run_to_completion(job_id: str, on_progress: Callable[[Job, dict], None] | None = None,
                      poll_s: float = 0.25) -> Job:
    """Claim the job when the limits allow (or let a running supervisor take it), run it in a
    child process, and return the finished job. Waiting parents are run first."""
    child = None
    cluster = config.load_settings().executor != "local"
    job: Job | None = None
    oom_before = 0
    reported = False
    last_reconcile = time.monotonic()
    while True:
        if child is not None and child.poll() is None:
            # Our own child runs the job: watch it and its progress file without opening the
            # catalog, each open of which costs ~30 ms of CPU that a benchmark on the other core feels.
            if on_progress is not None and job is not None:
                on_progress(job, jobfiles.read_progress(job_id))
            time.sleep(poll_s)
            continue
        job = jobs.get_job(job_id)
        if not job.active:
            if child is not None:
                child.wait()
            return job
        if job.state == "waiting":
            for dep in job.depends_on:
                if jobs.get_job(dep).active:
                    run_to_completion(dep, on_progress, poll_s)
            jobs.reconcile_now()
            continue
        if job.state == "queued" and child is None and cluster:
            ensure_running()  # jobs run on the cluster: the supervisor hands them to it
        elif job.state == "queued" and child is None:
            claimed = jobs.claim("cli", job_id=job_id)
            if claimed is not None:
                oom_before = crash.oom_kill_count()
                child = spawn_child(job_id)
                job = claimed  # progress reports the running job, not the queued row read before the claim
        if on_progress is not None:
            on_progress(job, jobfiles.read_progress(job_id))
        if child is None and job.state == "running" and time.monotonic() - last_reconcile >= RECONCILE_S:
            # Another runner holds the job (an identical submission attached to it): if that
            # runner died, nobody else may be left to end its job, and this wait would never end.
            last_reconcile = time.monotonic()
            jobs.reconcile_now()
            continue
        if child is not None and child.poll() is not None and not reported:
            reported = True
            # A signal is recorded as a crash; an exit without an outcome as a failure.
            crash.handle_child_exit(job_id, child.pid, child.returncode, oom_before, toolkits.facts())
            jobs.reconcile_now()
            continue
        time.sleep(poll_s)
