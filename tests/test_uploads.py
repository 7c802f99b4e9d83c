"""What the pages do with browser uploads, done by catalog functions the CLI shares: a calibration
file saved once under its content (catalog.calibration.save_upload). Real files, real plans."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import cli
from catalog import calibration, config, jobs

LONG_AGO_NS = 1_000_000_000


def _uploads() -> list[str]:
    return sorted(p.name for p in config.uploads_dir().iterdir())


# --------------------------------------------------------------------------- calibration uploads


def test_a_calibration_upload_is_saved_once_under_its_content_hash(root: Path) -> None:
    data = b"one line of calibration text\nanother line\n"
    path = calibration.save_upload("Quotes.TXT", data)
    assert path == config.uploads_dir() / f"calibration-{hashlib.sha256(data).hexdigest()[:16]}.txt"
    assert path.read_bytes() == data
    os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS))
    # The page hands the upload over on every rerun: the same bytes, under any name, write nothing.
    assert calibration.save_upload("quotes.txt", data) == path
    assert calibration.save_upload("quotes", data) == path  # no suffix: read as text
    assert path.stat().st_mtime_ns == LONG_AGO_NS
    other = calibration.save_upload("images.npy", b"other bytes")
    assert other.suffix == ".npy" and other != path
    assert _uploads() == sorted([path.name, other.name])  # no temporary file left behind


def test_a_torn_calibration_copy_is_written_again(root: Path) -> None:
    data = b"a calibration text\n" * 10
    path = calibration.save_upload("quotes.txt", data)
    path.write_bytes(data[:7])  # what an interrupted writer of the old page could leave
    assert calibration.save_upload("quotes.txt", data) == path
    assert path.read_bytes() == data


def test_an_uploaded_and_a_given_calibration_file_share_one_stored_copy(
        demo_source, root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Convert page saves the upload and submits its path; `cli.py convert --calibration`
    passes the user's own file. The same bytes end in one copy, used by the same jobs."""
    from backends import convert_job

    words = " ".join(f"word{i}" for i in range(300))
    options = {"types": ["IQ2_XXS"], "allow_requantize": True}
    uploaded = calibration.save_upload("quotes.txt", words.encode())
    page_subs = convert_job.submit("llamacpp.quantize", demo_source.root_variant_id,
                                   dict(options, calibration=str(uploaded)))
    given = tmp_path / "my quotes.txt"
    given.write_text(words)
    assert cli.main(["convert", "llamacpp.quantize", demo_source.root_variant_id, "--types", "IQ2_XXS",
                     "--allow-requantize", "--calibration", str(given), "--queue"]) == cli.EXIT_OK
    assert capsys.readouterr().out.count("already") == len(page_subs), "the CLI's jobs are the page's jobs"
    assert sorted(j.id for j in jobs.list_jobs() if j.kind == "convert") == sorted(s.job.id for s in page_subs)
    kept = sorted(p.name for p in (root / calibration.FOLDER).iterdir())
    assert kept == [f"{hashlib.sha256(words.encode()).hexdigest()[:16]}.txt"]
