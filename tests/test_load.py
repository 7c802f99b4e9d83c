"""Load, short: 3 browser sessions and a CLI writer on one data root for 20 s (tests/bench/load.py).

The 5-minute version with 8 sessions and 2 writers: `.venv/bin/python -m tests.bench.load`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.load import run_load

pytestmark = pytest.mark.browser


def test_load_short(tmp_path: Path, demo_gguf: Path) -> None:
    report = run_load(tmp_path / "data", sessions=3, writers=1, seconds=20)
    # Something was done, by both kinds of actor.
    assert any(o.ok and o.actor.startswith("browser") and o.kind == "page" for o in report.ops)
    assert any(o.ok and o.actor.startswith("cli") for o in report.ops)
    assert not [o for o in report.ops if o.kind == "crash"], [o.reason for o in report.ops if o.kind == "crash"]
    assert report.lock_errors == [], report.lock_errors
    assert report.lost_writes == [], report.lost_writes
    assert report.unreported_writes == [], report.unreported_writes
    assert report.unexplained_rows == [], report.unexplained_rows
    assert report.variants_without_files == [], report.variants_without_files
    assert report.files_without_rows == [], report.files_without_rows
    assert report.external_requests == [], report.external_requests


def test_a_run_that_did_nothing_or_mostly_failed_is_not_called_clean(capsys: pytest.CaptureFixture) -> None:
    """Before: with every operation failed and nothing written, the verdict said clean."""
    from tests.bench.load import LoadReport, Op

    empty = LoadReport(sessions=8, writers=2, seconds=300)
    assert not empty.clean and "no operation ran" in empty.verdict_problems
    failing = LoadReport(sessions=8, writers=2, seconds=300, ops=[
        Op("browser-0", "page", "catalog", ok=True),
        *[Op("cli-0", "import", "demo", ok=False, reason="refused") for _ in range(3)]])
    assert not failing.clean
    assert failing.verdict_problems == ["75% of 4 operations failed", "no write succeeded"]
    failing.print()
    out = capsys.readouterr().out
    assert "failed ops: 3 of 4 (import 3)" in out
    assert "RESULT: NOT clean: 75% of 4 operations failed; no write succeeded" in out
    working = LoadReport(sessions=8, writers=2, seconds=300, ops=[
        Op("browser-0", "page", "catalog", ok=True), Op("cli-0", "import", "demo", ok=True),
        Op("cli-0", "tag", "edge", ok=False)])
    assert working.clean, working.verdict_problems
