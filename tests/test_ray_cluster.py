"""Jobs on a Ray cluster, simulated on loopback: a head (127.0.0.2) and three workers, two x86
ones and one declaring `apple_silicon` as a stand-in (it runs the MLX CPU backend).

One setting (`executor: ray`) moves the jobs there. Import, conversions and benchmarks run as Ray
tasks, each on the worker its resources pick, checked from Ray's own record of the node (its
id and declared resources); a worker killed in the middle of a benchmark ends the job interrupted,
with nothing half-published and no catalog lock held, and its retry succeeds on the other x86
worker; a cancelled job's task and its process on the worker stop, and it stays cancelled; a
job no worker can take says why on its progress line until a worker joins.

Every node listens and talks on 127.0.0.2-127.0.0.6 only, with token authentication on and usage
statistics off; the test stops exactly the nodes it started. It takes about 3 minutes on two
cores, over the suite's budget: `scripts/test_ray` runs it (the README says so), and the suite
skips it unless RUN_RAY_CLUSTER=1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.browser import chromium_page, running_app, screenshot
from tests.helpers.models import tiny_llama
from tests.helpers.ray_cluster import HEAD_IP, Cluster, token_environment

pytestmark = pytest.mark.skipif(os.environ.get("RUN_RAY_CLUSTER") != "1",
                                reason="the Ray cluster test runs in scripts/test_ray (about 3 minutes)")

REPO = Path(__file__).resolve().parent.parent
X86 = ("127.0.0.3", "127.0.0.4")
APPLE = "127.0.0.5"
LATE = "127.0.0.6"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("ray")
    with token_environment(base):
        made = Cluster(base)
        try:
            made.start_head()
            for ip in X86:
                made.add_worker(ip)
            # The stand-in declares apple_silicon and the catalog's slots, not cpu_x86.
            made.add_worker(APPLE, ("apple_silicon",), declare_machine=False)
            yield made
        finally:
            left = made.stop()
    assert not left, f"Ray processes left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="module")
def catalog_on_ray(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data root whose settings send jobs to the cluster, and its supervisor (the tasks' owner)."""
    from catalog import config
    from tests.helpers.chain import data_root_at

    data = tmp_path_factory.mktemp("ray-data")
    with data_root_at(data):
        config.save_settings(config.Settings(allowed_roots=[str(data.parent)], lease_timeout_s=15,
                                             executor="ray", ray_address=cluster.address))
        log = open(data / "supervisor.out", "ab")  # noqa: SIM115
        supervisor = subprocess.Popen([sys.executable, "-m", "worker.supervisor"], cwd=REPO, stdout=log,
                                      stderr=subprocess.STDOUT, env=dict(os.environ, **{config.ROOT_ENV: str(data)}))
        try:
            _wait_for(lambda: (data / "supervisor.log").exists() or _supervisor_ready(data), 60, "the supervisor")
            yield data
        finally:
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout=60)
            log.close()


def _supervisor_ready(data: Path) -> bool:
    from worker.supervisor import is_running

    return is_running()


def _wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ray_nodes(cluster: Cluster) -> dict[str, dict]:
    """Ray's own record of the nodes, by node id."""
    import ray

    if not ray.is_initialized():
        ray.init(address=cluster.address, _node_ip_address=HEAD_IP, namespace="model-catalog-test",
                 log_to_driver=False, logging_level="WARNING")
    return {n["NodeID"]: n for n in ray.nodes()}


def _ran_on(job_id: str, cluster: Cluster) -> dict:
    """Where Ray ran the job: its node, as Ray records it (address and declared resources)."""
    from catalog.jobfiles import read_node

    node = read_node(job_id)
    assert node is not None, f"job {job_id} says nothing of where it ran"
    recorded = _ray_nodes(cluster)[node["node_id"]]
    assert recorded["NodeManagerAddress"] == node["node_ip"]
    return recorded


def test_jobs_run_on_the_worker_their_resources_pick(cluster: Cluster, catalog_on_ray: Path, demo_gguf: Path,
                                                     tmp_path: Path) -> None:
    from backends.importers import ImportRequest, import_now
    from catalog import variants
    from catalog.storage import find_orphans
    from tests.helpers.chain import benchmark, convert

    source = import_now(ImportRequest(kind="demo"))
    root = variants.get_variant(source.root_variant_id)
    assert "cpu_x86" in _ran_on(root.job_id, cluster)["Resources"]

    [hf] = convert("llamacpp.dequantize", root.id)
    assert "cpu_x86" in _ran_on(hf.job_id, cluster)["Resources"]

    tiny = import_now(ImportRequest(kind="path", path=str(tiny_llama(variants.variant_path(hf), tmp_path / "tiny"))))
    tiny_hf = variants.get_variant(tiny.root_variant_id)
    [mlx4] = convert("mlx.convert", tiny_hf.id)
    assert "cpu_x86" in _ran_on(mlx4.job_id, cluster)["Resources"]  # conversions run on x86 workers

    benchmark([mlx4.id])  # an MLX variant measures on the worker with apple_silicon
    from catalog import jobs, results

    [bench_job] = [j for j in jobs.list_jobs() if j.kind == "benchmark"]
    recorded = _ran_on(bench_job.id, cluster)
    assert "apple_silicon" in recorded["Resources"] and "cpu_x86" not in recorded["Resources"]
    assert recorded["NodeManagerAddress"] == APPLE
    assert mlx4.id in {r.variant_id for r in results.latest_results(tiny.id, "quick")}
    assert find_orphans() == []


def _demo_benchmark_running_on_a_worker() -> tuple:
    """(the demo's source, the id of a quick benchmark of its root) once the job runs on a worker."""
    from bench.jobs.common import submit_benchmarks
    from catalog import jobs, sources, variants
    from catalog.jobfiles import read_node

    [source] = sources.list_sources(search="SmolLM2")[0]
    [sub] = submit_benchmarks([variants.get_variant(source.root_variant_id).id], "quick")
    job_id = sub.job.id
    _wait_for(lambda: read_node(job_id) is not None and jobs.get_job(job_id).pid is not None, 120,
              "the benchmark to start on a worker")
    return source, job_id


def test_a_killed_worker_interrupts_its_job_and_a_retry_succeeds_elsewhere(cluster: Cluster,
                                                                            catalog_on_ray: Path) -> None:
    from catalog import jobs, results
    from catalog.jobfiles import read_node
    from worker.runner import run_to_completion

    source, job_id = _demo_benchmark_running_on_a_worker()
    first = read_node(job_id)["node_ip"]
    assert first in X86
    time.sleep(3)  # well inside the benchmark: the model is loaded, figures are being measured
    assert cluster.kill(first) > 0

    _wait_for(lambda: not jobs.get_job(job_id).active, 90, "the job to end after its worker died")
    job = jobs.get_job(job_id)
    assert job.state == "interrupted", (job.state, job.error)
    assert first in job.error and "retry it" in job.error
    assert not [r for r in results.latest_results(source.id, "quick") if r.job_id == job_id]
    started = time.monotonic()
    jobs.get_job(job_id)  # the catalog is not held by the dead worker's session
    assert time.monotonic() - started < 5

    jobs.retry(job_id)
    job = run_to_completion(job_id)
    assert job.state == "succeeded", job.error
    second = read_node(job_id)["node_ip"]
    assert second in X86 and second != first
    assert [r for r in results.latest_results(source.id, "quick") if r.job_id == job_id]


def test_cancel_stops_the_task_and_its_process_on_the_worker(cluster: Cluster, catalog_on_ray: Path) -> None:
    from catalog import jobs, results

    source, job_id = _demo_benchmark_running_on_a_worker()
    child = jobs.get_job(job_id).pid
    assert psutil.pid_exists(child)
    time.sleep(2)  # inside the benchmark
    assert jobs.cancel(job_id).state == "cancelled"
    _wait_for(lambda: not psutil.pid_exists(child), 60, "the job's process on the worker to stop")
    time.sleep(3)  # the executor has seen the task end: the cancel stays a cancel, not an interruption
    job = jobs.get_job(job_id)
    assert job.state == "cancelled" and job.error == "Cancelled by a user."
    assert not [r for r in results.latest_results(source.id, "quick") if r.job_id == job_id]


def test_a_job_no_worker_can_take_says_why_until_one_joins(cluster: Cluster, catalog_on_ray: Path) -> None:
    from backends import convert_job
    from catalog import jobfiles, jobs, sources, variants
    from catalog.jobfiles import read_node
    from worker.runner import run_to_completion

    for ip in X86:
        cluster.kill(ip)  # no x86 worker is left (the one the last test killed is gone already)
    [source] = sources.list_sources(search="SmolLM2")[0]
    root = variants.get_variant(source.root_variant_id)
    [sub] = convert_job.submit("llamacpp.quantize", root.id, {"types": ["Q8_0"], "allow_requantize": True})
    job_id = sub.job.id
    _wait_for(lambda: "no worker in the cluster declares it" in jobfiles.read_progress(job_id).get("message", ""),
              60, "the waiting reason")
    assert "waiting for a worker with cpu_x86" in jobfiles.read_progress(job_id)["message"]
    waiting_since = time.monotonic()
    with running_app(catalog_on_ray) as url, chromium_page() as page:
        page.goto(f"{url}/jobs")  # the Jobs page says why the job has not started
        page.get_by_text("waiting for a worker with cpu_x86").first.wait_for(timeout=60_000)
        assert " · waiting for a worker · " in page.inner_text("body")  # not "running": it is not
        screenshot(page, "ray-jobs-waiting.png")
        # Longer than the lease: a job that waits for a worker is not taken for dead.
        time.sleep(max(0.0, 20 - (time.monotonic() - waiting_since)))
        assert jobs.get_job(job_id).state == "running"

        cluster.add_worker(LATE)
        job = run_to_completion(job_id)
        assert job.state == "succeeded", job.error
        node = read_node(job_id)
        assert node["node_ip"] == LATE
        page.goto(f"{url}/jobs")  # and, once it ran, on which worker
        page.get_by_text(f"on {node['hostname']} ({LATE})").first.wait_for(timeout=60_000)
        screenshot(page, "ray-jobs-ran-on.png")


def test_every_node_talked_on_loopback_only(cluster: Cluster, catalog_on_ray: Path) -> None:
    remote = set()
    for proc in cluster.processes():
        try:
            remote |= {c.raddr.ip for c in proc.net_connections(kind="inet") if c.raddr}
        except psutil.Error:
            continue
    # A dual-stack socket reports its IPv4 peers in IPv6-mapped form (::ffff:127.0.0.3).
    assert remote and all(ip.removeprefix("::ffff:").startswith("127.") for ip in remote), remote
