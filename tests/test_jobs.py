"""Jobs: limits, dependencies, cancel and retry, leases, and killing processes mid-job."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from backends.importers import ImportRequest, submit_import
from catalog import config, jobfiles, jobs, sources
from catalog.files import remove_tree
from catalog.records import Job
from tests.helpers.models import tiny_hf_folder
from worker.runner import run_to_completion


def big_sparse_hf_folder(folder: Path, gigabytes: float = 3.0) -> Path:
    """A Hugging Face folder whose weights are a large sparse file: hashing it takes seconds."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    n = int(gigabytes * 2**30 / 4)
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path = folder / "model.safetensors"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
    os.truncate(path, 8 + len(header) + n * 4)
    return folder


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_supervisor(root: Path) -> subprocess.Popen:
    env = dict(os.environ, **{config.ROOT_ENV: str(root)})
    return subprocess.Popen([sys.executable, "-m", "worker.supervisor"], cwd=config.PROJECT_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def hashing_under_supervisor(root: Path, tmp_path: Path) -> Iterator[tuple[Job, subprocess.Popen]]:
    """A slow real import, running under a supervisor and caught while it hashes."""
    job = submit_import(ImportRequest(kind="path", path=str(big_sparse_hf_folder(tmp_path / "big")))).job
    sup = start_supervisor(root)
    try:
        wait_for(lambda: _running_with_progress(job.id), what="the import to be hashing")
        yield job, sup
    finally:
        sup.kill()
        sup.wait()


def process_ended(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def assert_nothing_left(root: Path, job_id: str) -> None:
    assert sources.count_sources() == 0
    assert not any((root / "artifacts").rglob("*.safetensors"))
    assert not (root / "jobs" / job_id / "work").exists()


def test_benchmark_runs_alone_and_jobs_start_in_order(root: Path) -> None:
    c1 = jobs.submit("convert", {"n": 1}, title="c1").job
    bench = jobs.submit("benchmark", {"n": 2}, title="bench").job
    c2 = jobs.submit("convert", {"n": 3}, title="c2").job
    assert jobs.claim("t").id == c1.id
    assert jobs.claim("t") is None, "the benchmark waits for the running conversion and holds c2"
    jobs.finish(c1.id)
    assert jobs.claim("t").id == bench.id
    assert jobs.claim("t") is None, "nothing starts while a benchmark runs"
    jobs.finish(bench.id)
    assert jobs.claim("t").id == c2.id


def test_conversions_run_in_parallel_up_to_the_limit(root: Path) -> None:
    ids = [jobs.submit("convert", {"n": i}, title=f"c{i}").job.id for i in range(3)]
    assert jobs.claim("t").id == ids[0]
    assert jobs.claim("t").id == ids[1]
    assert jobs.claim("t") is None  # max_parallel_conversions = 2 in the test settings


def test_identical_submission_attaches_to_the_running_job(root: Path) -> None:
    first = jobs.submit("convert", {"n": 1}, title="x", target_variant_id="v-same")
    second = jobs.submit("convert", {"n": 1}, title="x", target_variant_id="v-same")
    assert second.reused and second.job.id == first.job.id
    assert "already being made" in second.message


def test_parent_failure_fails_dependents_and_retry_recovers(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    parent = submit_import(ImportRequest(kind="path", path=str(folder))).job
    child = jobs.submit("import", dict(parent.recipe, name="second"), title="child",
                        depends_on=[parent.id]).job
    assert child.state == "waiting"
    moved = folder.rename(tmp_path / "moved")  # the input vanishes after submit
    done = run_to_completion(parent.id)
    assert done.state == "failed" and "config.json" in done.error
    child_after = jobs.get_job(child.id)
    assert child_after.state == "failed" and parent.id in child_after.error
    moved.rename(folder)
    jobs.retry(child.id)  # retries the failed parent too
    assert run_to_completion(child.id).state == "succeeded"
    assert jobs.get_job(parent.id).state == "succeeded"
    assert jobs.get_job(parent.id).attempt == 2
    assert (root / "jobs" / parent.id / "log.attempt1.txt").exists()


def test_retrying_an_interrupted_parent_requeues_its_dependents(root: Path, tmp_path: Path) -> None:
    parent = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    child = jobs.submit("import", parent.recipe, title="child", depends_on=[parent.id]).job
    grandchild = jobs.submit("import", parent.recipe, title="grandchild", depends_on=[child.id]).job
    cancelled = jobs.submit("import", parent.recipe, title="cancelled", depends_on=[parent.id]).job
    jobs.cancel(cancelled.id)
    assert jobs.claim("test", job_id=parent.id) is not None
    gone = subprocess.Popen(["sleep", "60"])  # stands in for the job's process, then vanishes
    jobs.set_process(parent.id, gone.pid)
    gone.kill()
    gone.wait()
    jobs.reconcile_now()
    assert jobs.get_job(parent.id).state == "interrupted"
    assert [jobs.get_job(j.id).state for j in (child, grandchild)] == ["failed", "failed"]
    assert jobs.retry(parent.id).state == "queued"
    assert [jobs.get_job(j.id).state for j in (child, grandchild)] == ["waiting", "waiting"]
    assert jobs.get_job(cancelled.id).state == "cancelled", "a user's cancel is not undone"
    assert run_to_completion(grandchild.id).state == "succeeded"
    assert [jobs.get_job(j.id).state for j in (parent, child)] == ["succeeded", "succeeded"]
    assert jobs.get_job(child.id).attempt == 2


def test_waiting_on_a_job_whose_runner_died_ends_it(root: Path, tmp_path: Path) -> None:
    """An identical submission attaches to the running job; when the process that ran it dies
    (a killed CLI), the waiter ends it as interrupted instead of waiting forever."""
    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert jobs.claim("cli", job_id=job.id) is not None
    gone = subprocess.Popen(["sleep", "60"])  # the other runner's child, then killed with it
    jobs.set_process(job.id, gone.pid)
    gone.kill()
    gone.wait()
    start = time.monotonic()
    after = run_to_completion(job.id)
    assert after.state == "interrupted" and "retry" in after.error
    assert time.monotonic() - start < 15


def test_cancel_a_queued_job(root: Path, tmp_path: Path) -> None:
    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "m")))).job
    assert jobs.cancel(job.id).state == "cancelled"
    assert jobs.claim("t") is None


def _running_with_progress(job_id: str) -> bool:
    job = jobs.get_job(job_id)
    return job.state == "running" and job.pid is not None and "hashing" in jobfiles.read_progress(job_id)["message"]


def test_killing_the_supervisor_mid_job_leaves_a_consistent_catalog(root: Path, tmp_path: Path) -> None:
    with hashing_under_supervisor(root, tmp_path) as (job, sup):
        child_pid = jobs.get_job(job.id).pid
        sup.send_signal(signal.SIGKILL)
        sup.wait()
        wait_for(lambda: process_ended(child_pid), timeout=10, what="the orphaned job to die")
    jobs.reconcile_now()
    after = jobs.get_job(job.id)
    assert after.state == "interrupted"
    assert "retry" in after.error
    assert_nothing_left(root, job.id)


def test_killing_the_job_process_is_reported_as_a_crash(root: Path, tmp_path: Path) -> None:
    with hashing_under_supervisor(root, tmp_path) as (job, _):
        os.kill(jobs.get_job(job.id).pid, signal.SIGKILL)
        # The supervisor is still alive, sees the signal in the exit status and says so: a job
        # killed from outside is not "interrupted" (that is for one that went with the app).
        wait_for(lambda: jobs.get_job(job.id).state == "crashed", timeout=20, what="crashed")
    assert "was killed (SIGKILL) from outside the catalog" in jobs.get_job(job.id).error
    assert_nothing_left(root, job.id)


def test_cancel_a_running_job_kills_it_and_cleans_up(root: Path, tmp_path: Path) -> None:
    with hashing_under_supervisor(root, tmp_path) as (job, _):
        pid = jobs.get_job(job.id).pid
        assert jobs.cancel(job.id).state == "cancelled"
        wait_for(lambda: process_ended(pid), timeout=10, what="the job process to end")
    assert jobs.get_job(job.id).state == "cancelled"
    assert_nothing_left(root, job.id)


def test_jobs_run_offline(root: Path) -> None:
    from worker.proc import child_environment

    env = child_environment()
    assert env["HF_HUB_OFFLINE"] == "1" and env["DO_NOT_TRACK"] == "1"
    assert env[config.ROOT_ENV] == str(root)


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
    for proc in psutil.Process().children(recursive=True):
        proc.kill()
    remove_tree(Path("/nonexistent"))


APP_STANDIN = """
from worker.supervisor import ensure_running
import time
ensure_running()
time.sleep(600)
"""


def test_killing_the_app_stops_its_supervisor_and_jobs(root: Path, tmp_path: Path) -> None:
    """The app starts the supervisor; killing the app (even with SIGKILL) ends both, and the job
    is left interrupted with nothing half-written."""
    job = submit_import(ImportRequest(kind="path", path=str(big_sparse_hf_folder(tmp_path / "big")))).job
    env = dict(os.environ, **{config.ROOT_ENV: str(root)})
    app = subprocess.Popen([sys.executable, "-c", APP_STANDIN], cwd=config.PROJECT_DIR, env=env)
    try:
        wait_for(lambda: _running_with_progress(job.id), what="the import to be hashing")
        child_pid = jobs.get_job(job.id).pid
        app.kill()
        app.wait()
        wait_for(lambda: jobs.get_job(job.id).state == "interrupted", timeout=20, what="interrupted")
        wait_for(lambda: process_ended(child_pid), timeout=10, what="the job process to end")
    finally:
        app.kill()
    from worker.supervisor import is_running

    wait_for(lambda: not is_running(), timeout=10, what="the supervisor to exit")
    assert_nothing_left(root, job.id)


def test_jobs_page_lists_every_active_job_and_the_recent_ended_ones(root: Path) -> None:
    """The list redraws every 2 s: every active job, then the 20 most recent ended ones, and a
    button for more (100 bordered rows took most of the page's time at ten times the scale)."""
    from streamlit.testing.v1 import AppTest

    ended = [jobs.submit("convert", {"n": n}, title=f"ended {n}").job for n in range(25)]
    for job in ended:
        jobs.cancel(job.id)
    active = jobs.submit("convert", {"n": "active"}, title="still queued").job  # newest, listed first anyway

    at = AppTest.from_file(str(config.PROJECT_DIR / "pages" / "jobs.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    lines = [m.value for m in at.markdown if " · " in m.value]
    assert active.id in lines[0] and "queued" in lines[0]
    shown = [job.id for job in ended if any(job.id in line for line in lines)]
    assert shown == [job.id for job in ended[5:]]  # the 20 newest ended ones
    at.button(key="jobs_show_more").click().run()
    lines = [m.value for m in at.markdown if " · " in m.value]
    assert all(any(job.id in line for line in lines) for job in ended)
    assert not [b for b in at.button if b.key == "jobs_show_more"]  # nothing older is left out
