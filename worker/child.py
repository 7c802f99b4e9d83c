"""One job, in its own process: `python -m worker.child JOB_ID`.

The supervisor (or the CLI) has already claimed the job. This process beats its heartbeat,
runs the handler for the job's kind, and records the outcome. If its parent dies it kills its
own process group, so no orphan keeps writing into the data root.

A native crash in this process (a toolkit segfaults) cannot be recorded from here: faulthandler
writes the Python stack to the job log, and the parent that waits on this process records the
crash from the signal in its exit status (worker/crash.py). A tool that dies from a signal is
recorded here, as a crash too.
"""

from __future__ import annotations

import faulthandler
import importlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import IO, Any

from catalog import config, diskspace, jobfiles, jobs, remote_db
from catalog.files import folder_size, remove_tree
from worker import crash, toolkits
from worker.advice import estimated_disk_need, explain
from worker.context import JobContext

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# Handlers are imported only when a job of that kind runs: the app never loads a toolkit.
HANDLERS = {
    "import": "backends.importers:run_import_job",
    "convert": "backends.convert_job:run_convert_job",
    "benchmark": "bench.jobs.dispatch:run_benchmark_job",
}


def _handler(kind: str) -> Any:
    module, _, name = HANDLERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def _watchdog(job_id: str, parent: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        jobfiles.touch_heartbeat(job_id)
        if os.getppid() != parent:
            log.error("parent %s died; stopping job %s", parent, job_id)
            remove_tree(jobfiles.work_dir(job_id))
            os.killpg(os.getpgid(0), signal.SIGKILL)


def _on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


_fault_log: IO[str] | None = None  # kept open for as long as faulthandler may write to it


def _enable_faulthandler(job_id: str) -> None:
    """On SIGSEGV, SIGILL, SIGBUS, SIGFPE or SIGABRT, write every thread's Python stack to the
    job log before the process dies: it names the library that crashed (worker/crash.py)."""
    global _fault_log
    try:
        _fault_log = open(jobfiles.log_path(job_id), "a", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return
    faulthandler.enable(file=_fault_log, all_threads=True)


def _log_safely(ctx: JobContext, text: str) -> None:
    try:
        ctx.log(text)
    except OSError:  # a full disk must not stop the failure from being recorded
        log.error("could not write the job log: %s", text[-2000:])


def _record_disk_full(ctx: JobContext, exc: BaseException) -> None:
    """Free the job's partial output first, then record: with the disk full, the catalog's
    write log cannot grow, and the failure would otherwise be lost (read as "interrupted")."""
    work = jobfiles.work_dir(ctx.job.id)
    written = folder_size(work) if work.exists() else 0
    remove_tree(work)
    need = max(written, estimated_disk_need(ctx.job, toolkits.facts()))
    sentence = diskspace.disk_full_sentence(need, diskspace.free_bytes())
    _log_safely(ctx, traceback.format_exc())
    jobs.fail(ctx.job.id, sentence)


def _record_failure(ctx: JobContext, exc: BaseException, oom_before: int) -> None:
    job_id = ctx.job.id
    if diskspace.is_disk_full(exc):
        _record_disk_full(ctx, exc)
        return
    _log_safely(ctx, traceback.format_exc())
    if crash.tool_signal(exc) is not None:
        report = crash.tool_report(job_id, exc, oom_before, toolkits.facts())
        jobs.crash(job_id, report.sentence, report.as_dict())  # no-op if the job was cancelled
        return
    sentence = "The job was stopped." if isinstance(exc, SystemExit | KeyboardInterrupt) else explain(exc)
    state = "cancelled" if jobs.get_job(job_id).state == "cancelled" else "failed"
    jobs.fail(job_id, sentence, state=state)


def run(job_id: str) -> int:
    config.apply_offline_environment()
    _enable_faulthandler(job_id)
    oom_before = crash.oom_kill_count()
    job = jobs.get_job(job_id)
    ctx = JobContext(job)
    stop = threading.Event()
    threading.Thread(target=_watchdog, args=(job_id, os.getppid(), stop), daemon=True).start()
    signal.signal(signal.SIGTERM, _on_term)
    ctx.log(f"started {job.kind} job (pid {os.getpid()}, attempt {job.attempt})")
    started = time.monotonic()
    try:
        result = _handler(job.kind)(ctx) or {}
        result.setdefault("seconds", round(time.monotonic() - started, 3))
        jobs.finish(job_id, result)
        ctx.log(f"succeeded in {time.monotonic() - started:.1f} s")
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the job row
        _record_failure(ctx, exc, oom_before)
        return 1
    finally:
        stop.set()
        remove_tree(jobfiles.work_dir(job_id))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if os.environ.get(remote_db.GATEWAY_ENV):  # on a cluster worker: the catalog is on the head
        from worker.ray_gateway import connect_from_environment

        connect_from_environment()
    sys.exit(run(sys.argv[1]))


if __name__ == "__main__":
    main()
