"""What the Ray executor adds per job: `.venv/bin/python -m tests.bench.ray_overhead [--rounds 3]`.

Two data roots with the demo imported, one on the local executor and one on a loopback Ray
cluster (a head on 127.0.0.2 and one x86 worker on 127.0.0.3, token auth on). Each round runs the
same conversion (llama.cpp Q8_0 requantize of the demo) once on each, alternating so machine drift
falls on both; the variant is deleted between runs. Both go through a supervisor, as the app's
jobs do. Prints, per executor, submit-to-succeeded and the job's own started-to-ended time
(median and range), and the ratio of medians.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers.chain import data_root_at
from tests.helpers.ray_cluster import Cluster, token_environment

log = logging.getLogger("ray_overhead")
WORKER_IP = "127.0.0.3"
OPTIONS = {"types": ["Q8_0"], "allow_requantize": True}


def _wait(job_id: str, timeout_s: float = 600) -> None:
    from catalog import jobs

    deadline = time.monotonic() + timeout_s
    while jobs.get_job(job_id).active:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end in {timeout_s:.0f} s")
        time.sleep(0.05)


def _prepare(root: Path, allowed: Path, executor: str, address: str) -> str:
    """Settings, a supervisor and the demo imported; returns the demo's root variant id."""
    from backends.importers import ImportRequest, import_now
    from catalog import config, variants
    from worker.supervisor import ensure_running

    with data_root_at(root):
        config.save_settings(config.Settings(allowed_roots=[str(allowed)], executor=executor, ray_address=address))
        ensure_running()
        source = import_now(ImportRequest(kind="demo"))
        return variants.get_variant(source.root_variant_id).id


def _one_run(root: Path, variant_id: str) -> tuple[float, float]:
    """(submit to succeeded, the job's started to ended) in seconds; the output is deleted."""
    from backends import convert_job
    from catalog import jobs, variants

    with data_root_at(root):
        start = time.monotonic()
        [sub] = convert_job.submit("llamacpp.quantize", variant_id, OPTIONS)
        _wait(sub.job.id)
        wall = time.monotonic() - start
        job = jobs.get_job(sub.job.id)
        if job.state != "succeeded":
            raise RuntimeError(f"{root.name}: job {job.id} {job.state}: {job.error}")
        variants.delete_variant(job.target_variant_id)
        return wall, (job.ended_at - job.started_at).total_seconds()


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, token_environment(Path(tmp)):
        base = Path(tmp)
        cluster = Cluster(base / "ray")
        started = time.monotonic()
        try:
            cluster.start_head()
            cluster.add_worker(WORKER_IP)
            print(f"cluster up in {time.monotonic() - started:.1f} s (head + 1 worker)", flush=True)
            roots = {"local": base / "local", "ray": base / "on-ray"}
            demo = {name: _prepare(root, base, name, cluster.address if name == "ray" else "")
                    for name, root in roots.items()}
            walls: dict[str, list[float]] = {name: [] for name in roots}
            runs: dict[str, list[float]] = {name: [] for name in roots}
            for i in range(args.rounds):
                order = list(roots) if i % 2 == 0 else list(reversed(roots))
                for name in order:
                    wall, run = _one_run(roots[name], demo[name])
                    walls[name].append(wall)
                    runs[name].append(run)
                    print(f"round {i + 1} {name:5s}: submit->succeeded {wall:6.2f} s, job ran {run:6.2f} s", flush=True)
        finally:
            left = cluster.stop()
    print()
    for name in roots:
        print(f"{name:5s} submit->succeeded {_summary(walls[name])};  job ran {_summary(runs[name])}")
    ratio = statistics.median(walls["ray"]) / statistics.median(walls["local"])
    added = statistics.median(walls["ray"]) - statistics.median(walls["local"])
    print(f"ray / local (submit->succeeded, medians): {ratio:.2f}x, {added:+.2f} s per job")
    print(f"Ray processes left behind: {len(left)}")


if __name__ == "__main__":
    main()
