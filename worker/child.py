"""One job, in its own process: `python -m worker.child JOB_ID`.

The supervisor (or the CLI) has already claimed the job. This process beats its heartbeat,
runs the handler for the job's kind, and records the outcome. If its parent dies it kills its
own process group, so no orphan keeps writing into the data root.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from catalog import config, jobfiles, jobs
from catalog.files import remove_tree
from worker.advice import explain
from worker.context import JobContext

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# Handlers are imported only when a job of that kind runs: the app never loads a toolkit.
HANDLERS = {
    "import": "backends.importers:run_import_job",
    "convert": "backends.convert_job:run_convert_job",
    "benchmark": "bench.job:run_benchmark_job",
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


def run(job_id: str) -> int:
    config.apply_offline_environment()
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
        ctx.log(traceback.format_exc())
        sentence = "The job was stopped." if isinstance(exc, SystemExit | KeyboardInterrupt) else explain(exc)
        state = "cancelled" if jobs.get_job(job_id).state == "cancelled" else "failed"
        jobs.fail(job_id, sentence, state=state)
        return 1
    finally:
        stop.set()
        remove_tree(jobfiles.work_dir(job_id))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.exit(run(sys.argv[1]))


if __name__ == "__main__":
    main()
