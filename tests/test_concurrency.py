"""Many processes on one catalog: no lost write, no lock error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backends.export import export_variant
from backends.importers import ImportRequest, submit_import
from catalog import config, jobs, sources, variants
from catalog.files import sha256_file

WRITER = """
import sys
from catalog import jobs
for m in range(int(sys.argv[2])):
    jobs.submit("convert", {"writer": sys.argv[1], "m": m}, title=f"w{sys.argv[1]}-{m}")
"""
READER = """
import time
from catalog import jobs
end = time.time() + float(__import__("sys").argv[1])
reads = 0
while time.time() < end:
    jobs.list_jobs(limit=10)
    reads += 1
print(reads)
"""


def test_n_processes_times_m_writes_plus_a_reader(root: Path) -> None:
    n, m = 6, 25
    env = {"PYTHONPATH": str(config.PROJECT_DIR), config.ROOT_ENV: str(root), "PATH": "/usr/bin:/bin"}
    reader = subprocess.Popen([sys.executable, "-c", READER, "8"], env=env, cwd=config.PROJECT_DIR,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(i), str(m)], env=env, cwd=config.PROJECT_DIR,
                                stderr=subprocess.PIPE, text=True) for i in range(n)]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        assert "lock" not in err.lower()
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err
    assert int(out) > 0
    rows = jobs.list_jobs(limit=10_000)
    assert len(rows) == n * m
    assert len({(r.recipe["writer"], r.recipe["m"]) for r in rows}) == n * m


# ------------------------------------------------------------------ the same model imported at once


def assert_every_variant_whole_and_no_stray_files(root: Path) -> None:
    """Every available variant has all its files with their recorded bytes, and every folder under
    artifacts/ belongs to a recorded variant: nothing lost, nothing without a row."""
    recorded = set()
    for source in sources.list_sources()[0]:
        for variant in variants.variants_of_source(source.id):
            recorded.add((source.id, variant.id))
            if variant.state == "deleted":
                continue
            assert variant.state == "available"
            full = variants.get_variant(variant.id)
            for f in full.files:
                assert sha256_file(variants.variant_path(full) / f.relpath) == f.sha256, f.relpath
    on_disk = {(p.parent.name, p.name) for p in (root / "artifacts").glob("*/*")}
    assert on_disk <= recorded, f"folders without a row: {on_disk - recorded}"


def _assert_one_demo_source(root: Path, tmp_path: Path, tags: list[str]) -> None:
    [source] = sources.list_sources()[0]
    assert source.tags == tags, "the later import's tags were merged, not dropped"
    assert_every_variant_whole_and_no_stray_files(root)
    exported = export_variant(source.root_variant_id, tmp_path / "out")
    assert any(exported.glob("*.gguf"))


def test_two_cli_imports_of_the_same_model_at_once(root: Path, tmp_path: Path, demo_gguf: Path) -> None:
    """Two people import the demo within the same second: both succeed, the stored copy is whole."""
    procs = [subprocess.Popen([sys.executable, "cli.py", "--data-root", str(root), "import", "--demo",
                               "--tags", tag], cwd=config.PROJECT_DIR, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("alpha", "beta")]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        assert "Exception" not in out + err and "Traceback" not in out + err
    _assert_one_demo_source(root, tmp_path, ["alpha", "beta"])


def test_two_queued_imports_of_the_same_model_under_the_supervisor(root: Path, tmp_path: Path,
                                                                  demo_gguf: Path) -> None:
    from tests.test_jobs import start_supervisor, wait_for

    queued = [submit_import(ImportRequest(kind="demo", tags=[tag])).job for tag in ("alpha", "beta")]
    sup = start_supervisor(root)
    try:
        wait_for(lambda: not any(jobs.get_job(j.id).active for j in queued), timeout=300, what="both imports")
    finally:
        sup.kill()
        sup.wait()
    for job in queued:
        done = jobs.get_job(job.id)
        assert done.state == "succeeded", done.error
    _assert_one_demo_source(root, tmp_path, ["alpha", "beta"])
