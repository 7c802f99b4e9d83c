"""The CLI's job output (issue 25): `jobs show` leads with the job's state, progress lines name
the running job as running, and a reader that goes away (`| head`) ends it without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backends.importers import ImportRequest, submit_import
from catalog import config
from tests.helpers.models import tiny_hf_folder
from worker.runner import run_to_completion


def _cli(root: Path, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "cli.py", "--data-root", str(root), *args], cwd=config.PROJECT_DIR,
                            text=True, **popen)  # type: ignore[call-overload]


def test_progress_says_running_and_show_leads_with_the_state(root: Path, tmp_path: Path) -> None:
    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert job is not None
    seen: list[str] = []
    done = run_to_completion(job.id, on_progress=lambda j, progress: seen.append(j.state))
    assert done.state == "succeeded"
    assert seen and set(seen) == {"running"}, seen  # it said "queued" while the job ran
    shown = _cli(root, "jobs", "show", job.id, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = shown.communicate(timeout=120)
    assert shown.returncode == 0, err
    first, *rest = out.splitlines()
    assert first == f"job {job.id} succeeded"  # before: the log's "queued: ..." came first
    assert "log (last 40 lines):" in rest and any(line.startswith("queued: ") for line in rest)


def test_a_reader_that_goes_away_ends_the_cli_quietly(root: Path) -> None:
    proc = _cli(root, "jobs", "list", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # as `| head` does once it has read enough
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err
