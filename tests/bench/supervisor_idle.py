"""CPU used by an idle supervisor: `.venv/bin/python -m tests.bench.supervisor_idle [--seconds 20]`.

Starts `python -m worker.supervisor` on a fresh data root that holds some finished jobs (so
its polling reads a realistic jobs table), lets it settle, then reads its CPU time with psutil
over the given window. Prints the share of one core it used and how quickly it picked up a job
submitted afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

log = logging.getLogger("supervisor_idle")


def _seed(root: Path, finished_jobs: int) -> None:
    from catalog import config, jobs

    os.environ[config.ROOT_ENV] = str(root)
    config.save_settings(config.Settings())
    for i in range(finished_jobs):
        job = jobs.submit("convert", {"n": i}, title=f"seed {i}").job
        assert job is not None
        jobs.fail(job.id, "seeded as failed")


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure(seconds: float, finished_jobs: int = 50) -> dict[str, float]:
    from catalog import config, jobs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        _seed(root, finished_jobs)
        env = dict(os.environ, **{config.ROOT_ENV: str(root)})
        sup = subprocess.Popen([sys.executable, "-m", "worker.supervisor"], cwd=config.PROJECT_DIR, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc = psutil.Process(sup.pid)
            time.sleep(3.0)  # imports and the first poll are start-up cost, not idle cost
            cpu0, wall0 = _cpu_seconds(proc), time.monotonic()
            time.sleep(seconds)
            cpu1, wall1 = _cpu_seconds(proc), time.monotonic()
            # A job that fails at once (unknown kind): we only time how soon it is claimed.
            job = jobs.submit("import", {"kind": "none"}, title="pickup probe").job
            assert job is not None
            submitted = time.monotonic()
            while jobs.get_job(job.id).state == "queued" and time.monotonic() - submitted < 30:
                time.sleep(0.02)
            pickup = time.monotonic() - submitted
        finally:
            sup.terminate()
            sup.wait(timeout=30)
    return {"idle_core_percent": 100.0 * (cpu1 - cpu0) / (wall1 - wall0), "cpu_seconds": cpu1 - cpu0,
            "window_s": wall1 - wall0, "pickup_s": pickup}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=50, help="finished jobs in the catalog")
    args = parser.parse_args()
    figures = measure(args.seconds, args.jobs)
    log.info("idle supervisor: %.2f%% of one core (%.3f s CPU over %.1f s); a new job was claimed after %.2f s",
             figures["idle_core_percent"], figures["cpu_seconds"], figures["window_s"], figures["pickup_s"])


if __name__ == "__main__":
    main()
