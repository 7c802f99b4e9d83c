"""Crash reports: a job whose process or tool dies from a signal is reported as a crash, with its
step, its signal and its log's last lines, and leaves nothing behind. Also: an idle supervisor
costs almost nothing, and a full disk is reported as a full disk.

Faults are injected into real job processes (tests/helpers/faults/sitecustomize.py on
PYTHONPATH): a real segfault, abort(), a tool that aborts, SIGKILL from outside.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from backends import registry
from backends.importers import ImportRequest, submit_import
from catalog import config, db, diskspace, jobs, sources
from catalog.records import Job
from tests.helpers.models import tiny_hf_folder, write_safetensors
from tests.test_jobs import (
    _running_with_progress,
    big_sparse_hf_folder,
    hashing_under_supervisor,
    process_ended,
    start_supervisor,
    wait_for,
)
from worker import crash, toolkits
from worker.runner import run_to_completion

FAULTS = Path(__file__).resolve().parent / "helpers" / "faults"


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch):
    """inject("hashing", "SIGSEGV"): job processes started after this hit the fault at that step."""
    def arm(step_prefix: str, fault: str) -> None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]))
        monkeypatch.setenv("MODEL_CATALOG_TEST_FAULT", f"{step_prefix}={fault}")
    return arm


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    for proc in psutil.Process().children(recursive=True):
        proc.kill()


def assert_nothing_left(root: Path, job: Job) -> None:
    """No work folder, no stored files, no source row: the crash left the catalog as it was."""
    assert not (root / "jobs" / job.id / "work").exists()
    assert sources.count_sources() == 0
    assert not [p for p in (root / "artifacts").rglob("*") if p.is_file()]


def submit_tiny_import(tmp_path: Path) -> Job:
    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert job is not None
    return job


def test_a_segfault_in_the_job_process_is_a_crash(root: Path, tmp_path: Path, inject) -> None:
    inject("hashing", "SIGSEGV")
    job = submit_tiny_import(tmp_path)
    sup = start_supervisor(root)
    try:
        done = wait_for(lambda: (j := jobs.get_job(job.id)).active is False and j, timeout=60, what="the crash")
    finally:
        sup.terminate()
        sup.wait()
    assert done.state == "crashed", done.error
    assert done.error.startswith("Crashed while hashing files: the job process segfaulted (SIGSEGV)")
    assert done.crash["signal"] == "SIGSEGV" and done.crash["step"].startswith("hashing")
    assert "Fatal Python error: Segmentation fault" in done.crash["log_tail"]
    assert "sitecustomize.py" in done.crash["log_tail"], "faulthandler's Python stack is in the log"
    assert_nothing_left(root, done)
    assert jobs.retry(job.id).state == "queued", "a crashed job can be retried"


@pytest.mark.parametrize(("fault", "words"), [
    ("SIGILL", "hit an illegal instruction (SIGILL); this build uses CPU instructions this machine does not run"),
    ("SIGABRT", "aborted (SIGABRT)"),
    ("SIGBUS", "hit a bus error (SIGBUS)"),
])
def test_each_fatal_signal_is_named_through_the_cli_runner(root: Path, tmp_path: Path, inject, fault: str,
                                                           words: str) -> None:
    inject("reading metadata", fault)
    done = run_to_completion(submit_tiny_import(tmp_path).id)
    assert done.state == "crashed"
    assert done.error.startswith(f"Crashed while reading metadata: the job process {words}"), done.error
    assert_nothing_left(root, done)


def test_a_tool_that_aborts_is_a_crash_of_that_tool(root: Path, tmp_path: Path, inject) -> None:
    tool = tmp_path / "bin" / "llama-quantize"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 'ggml.c:1234: GGML_ASSERT(n_dims > 0) failed'\nkill -ABRT $$\n")
    tool.chmod(0o755)
    inject("hashing", f"tool:{tool}")
    done = run_to_completion(submit_tiny_import(tmp_path).id)
    assert done.state == "crashed"
    assert done.error.startswith("Crashed while hashing files: llama-quantize aborted (SIGABRT)"), done.error
    assert "GGML_ASSERT(n_dims > 0) failed" in done.crash["log_tail"]
    assert_nothing_left(root, done)


def test_sigkill_with_the_oom_counter_rising_reads_out_of_memory(root: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's OOM killer is faked by its counter only (failure injection); the SIGKILL is real."""
    kills = iter(range(100))
    monkeypatch.setattr(crash, "oom_kill_count", lambda: next(kills))
    job = submit_import(ImportRequest(kind="path", path=str(big_sparse_hf_folder(tmp_path / "big")))).job

    def kill_when_hashing() -> None:
        wait_for(lambda: _running_with_progress(job.id), what="the import to be hashing")
        os.kill(jobs.get_job(job.id).pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_hashing)
    killer.start()
    done = run_to_completion(job.id)
    killer.join()
    assert done.state == "crashed"
    assert done.error.startswith("Stopped: out of memory; the system's out-of-memory killer ended the job "
                                 "process while hashing"), done.error
    assert_nothing_left(root, done)


def test_a_crash_in_a_library_is_named_from_faulthandler_stack(tmp_path: Path) -> None:
    """A real faulthandler dump of a segfault beneath a package called llama_cpp."""
    package = tmp_path / "site" / "llama_cpp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import ctypes\n\ndef load(path):\n    return ctypes.string_at(0)\n")
    log_file = tmp_path / "log.txt"
    code = ("import faulthandler, sys; fh = open(sys.argv[1], 'a'); faulthandler.enable(file=fh, all_threads=True); "
            "import llama_cpp; llama_cpp.load('model-Q8_0.gguf')")
    proc = subprocess.run([sys.executable, "-c", code, str(log_file)], cwd=tmp_path / "site", check=False)
    assert proc.returncode == -signal.SIGSEGV
    assert crash.library_in_stack(log_file.read_text(), dict(toolkits.facts().libraries)) == "llama.cpp"
    report = crash.CrashReport("SIGSEGV", signal.SIGSEGV, "smoke test: loading model-Q8_0.gguf", "llama.cpp",
                               False, "")
    assert report.sentence.startswith(
        "Crashed in the smoke test: llama.cpp segfaulted (SIGSEGV) while loading model-Q8_0.gguf;")


def test_a_segfault_inside_llama_cpp_in_the_smoke_test_names_both(demo_source, inject) -> None:
    """A real conversion (the demo requantized to Q8_0: 5 s, where dequantizing took 40) whose smoke
    test segfaults inside llama_cpp while it loads the parent GGUF: the step, the library, the signal
    and the file are all named."""
    pytest.importorskip("llama_cpp", reason="the llama.cpp binding is not installed; run the README's setup")
    from backends import convert_job
    from catalog import variants

    inject("smoke test: running the parent", "llama-load-segv")
    [sub] = convert_job.submit("llamacpp.quantize", demo_source.root_variant_id,
                               {"types": ["Q8_0"], "allow_requantize": True})
    done = run_to_completion(sub.job.id)
    parent_file = registry.main_file(variants.get_variant(demo_source.root_variant_id)).name
    assert done.state == "crashed", done.error
    assert done.error.startswith(f"Crashed in the smoke test: llama.cpp segfaulted (SIGSEGV) while running the "
                                 f"parent {parent_file}"), done.error
    assert "llama_cpp" in done.crash["log_tail"]
    assert not (config.data_root() / "jobs" / done.id / "work").exists()
    assert [v.id for v in variants.variants_of_source(demo_source.id)] == [demo_source.root_variant_id]


def test_interrupted_and_cancelled_stay_what_they_were(root: Path, tmp_path: Path) -> None:
    with hashing_under_supervisor(root, tmp_path) as (job, _):
        pid = jobs.get_job(job.id).pid
        assert jobs.cancel(job.id).state == "cancelled"
        wait_for(lambda: process_ended(pid), timeout=10, what="the job process to end")
    assert jobs.get_job(job.id).state == "cancelled", "the supervisor saw the signal but the user stopped it"
    with hashing_under_supervisor(root, tmp_path / "second") as (job, sup):
        child = jobs.get_job(job.id).pid
        sup.kill()  # the supervisor (like the app) vanishes: its job goes with it
        sup.wait()
        wait_for(lambda: process_ended(child), timeout=10, what="the orphaned job to die")
    jobs.reconcile_now()
    assert jobs.get_job(job.id).state == "interrupted"


def test_jobs_page_and_cli_show_the_crash(root: Path, tmp_path: Path, inject) -> None:
    from streamlit.testing.v1 import AppTest

    inject("hashing", "SIGSEGV")
    done = run_to_completion(submit_tiny_import(tmp_path).id)
    assert done.state == "crashed"
    cli = subprocess.run([sys.executable, "cli.py", "--data-root", str(root), "jobs", "show", done.id],
                         cwd=config.PROJECT_DIR, capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    assert f"job {done.id} crashed: Crashed while hashing files" in cli.stdout
    assert "Fatal Python error: Segmentation fault" in cli.stdout
    at = AppTest.from_file(str(config.PROJECT_DIR / "pages" / "jobs.py"), default_timeout=60).run()
    assert not at.exception
    shown = "\n".join(str(e.value) for e in [*at.error, *at.caption, *at.markdown, *at.code])
    assert "segfaulted (SIGSEGV)" in shown and "crashed" in shown
    assert "Fatal Python error: Segmentation fault" in shown
    assert at.button(key=f"retry_{done.id}") is not None


# ---------------------------------------------------------------------- the idle supervisor


def test_an_idle_supervisor_barely_uses_the_cpu_and_still_starts_jobs_at_once(root: Path, tmp_path: Path) -> None:
    sup = start_supervisor(root)
    try:
        proc = psutil.Process(sup.pid)
        wait_for(lambda: (root / "supervisor.lock").exists(), what="the supervisor")
        time.sleep(2.0)  # imports and the first full check are start-up, not idle, cost
        before, start = proc.cpu_times(), time.monotonic()
        time.sleep(6.0)
        after, window = proc.cpu_times(), time.monotonic() - start
        share = (after.user + after.system - before.user - before.system) / window
        assert share < 0.015, f"the idle supervisor used {share:.1%} of a core"
        job = submit_tiny_import(tmp_path)
        submitted = time.monotonic()
        wait_for(lambda: jobs.get_job(job.id).state != "queued", timeout=5, what="the supervisor to claim it")
        assert time.monotonic() - submitted < 2.0
        wait_for(lambda: jobs.get_job(job.id).state == "succeeded", timeout=60, what="the import")
    finally:
        sup.terminate()
        sup.wait()


# ------------------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data root on a 50 MB tmpfs; skipped where this user may not mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=50m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"mounting a 50 MB tmpfs is not permitted here ({proc.stderr.strip() or proc.returncode}); "
                    "run as root to test a full disk")
    data = mount / "data"
    monkeypatch.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    config.save_settings(config.Settings(allowed_roots=[str(tmp_path)], lease_timeout_s=10))
    try:
        yield data
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_frees_the_partial_output_then_says_so(small_disk_root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "big")
    weights = np.random.default_rng(0).standard_normal(60 * 2**20 // 4).astype(np.float32)
    write_safetensors(folder / "model.safetensors", {"w": weights})  # 60 MB on a 50 MB disk
    job = submit_import(ImportRequest(kind="path", path=str(folder))).job
    done = run_to_completion(job.id)
    assert done.state == "failed", done.error
    assert done.error.startswith("The disk holding the data root is full: "), done.error
    figures = re.search(r"full: ([\d.]+) (GB|MB|KB|bytes) needed, ([\d.]+) (GB|MB|KB|bytes) free", done.error)
    assert figures, done.error
    units = {"GB": 2**30, "MB": 2**20, "KB": 2**10, "bytes": 1}
    need, free = float(figures[1]) * units[figures[2]], float(figures[3]) * units[figures[4]]
    assert figures[2] == "MB" and need >= 59 * 2**20 and free < need, done.error
    assert not (small_disk_root / "jobs" / job.id / "work").exists()
    assert sources.count_sources() == 0
    # And the disk is usable again: the same catalog takes a small import.
    assert run_to_completion(submit_tiny_import(tmp_path).id).state == "succeeded"


def test_preflight_disk_figures_are_true_as_printed() -> None:
    from backends.preflight import generic_checks
    from backends.registry import get_conversion
    from catalog.records import Variant

    conv = get_conversion("llamacpp.quantize")
    variant = Variant(id="v-x", source_id="s-x", parent_id=None, format=conv.input_formats[0], precision="F16",
                      backend="llamacpp", conversion="x", options={}, toolkit_versions={}, state="available",
                      created_at=None, job_id=None, size_bytes=int(0.104 * 2**30 / conv.disk_factor),
                      metadata={}, deleted_at=None)
    problems = generic_checks(conv, variant, free_disk=int(0.097 * 2**30), available_memory=2**40)
    [disk] = [p.message for p in problems if "of disk" in p.message]
    assert "needs about 107 MB of disk but the data root has 99 MB free" in disk
    assert diskspace.gb_pair(int(12.3 * 2**30), int(3.2 * 2**30)) == ("12.3", "3.1")
    # tiny figures in a unit they read well in, never "0.000217 GB needed, 0.000038 GB free"
    assert diskspace.size_pair(int(0.000217 * 2**30), int(0.000038 * 2**30)) == ("228 KB", "39 KB")
    assert diskspace.size_pair(int(12.3 * 2**30), int(3.2 * 2**30)) == ("12.3 GB", "3.1 GB")
    assert diskspace.size_pair(5 * 2**30, 1000 * 2**10) == ("5.0 GB", "1000 KB")
    assert diskspace.size_pair(2**20 + 1, 2**20) == ("1.1 MB", "1.0 MB")  # a shortfall always shows
