"""What the pages do with browser uploads, done by catalog functions the CLI shares: a calibration
file saved once under its content (catalog.calibration.save_upload) and the files of an import
staged under the uploads (catalog.uploads). Real files, real plans and imports."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import cli
from backends.importers import ImportRequest, import_now, submit_import
from catalog import calibration, config, jobs, uploads
from catalog.errors import InvalidInputError
from tests.helpers.models import tiny_hf_folder

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


# ------------------------------------------------------------------------------- import uploads


def _model_file(path: Path) -> bool:
    """The Import page's rule: a lone .gguf or .onnx file is imported as itself."""
    return path.name.endswith((".gguf", ".onnx"))


def test_one_model_file_is_staged_and_imported_as_itself(root: Path, demo_gguf: Path) -> None:
    target = uploads.stage_upload([("model.gguf", demo_gguf.read_bytes())], single_file=_model_file)
    assert target.name == "model.gguf" and target.parent.parent == config.uploads_dir()
    assert target.read_bytes() == demo_gguf.read_bytes()
    src = import_now(ImportRequest(kind="upload", path=str(target)))
    assert src.origin_kind == "upload"
    assert _uploads() == []  # the import job removed its staging folder


def test_the_files_of_a_folder_are_staged_together(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    target = uploads.stage_upload(files, single_file=_model_file)
    assert target.parent == config.uploads_dir()
    assert sorted((p.name, p.read_bytes()) for p in target.iterdir()) == sorted(files)
    assert submit_import(ImportRequest(kind="upload", path=str(target))).job is not None


@pytest.mark.parametrize("name, data, match", [("model.gguf", b"not a gguf", "not a GGUF file"),
                                               ("config.json", b"{}", "no .safetensors weights")])
def test_a_refused_upload_is_discarded(root: Path, name: str, data: bytes, match: str) -> None:
    target = uploads.stage_upload([(name, data)], single_file=_model_file)
    assert target.is_file() == _model_file(target)
    with pytest.raises(InvalidInputError, match=match):
        submit_import(ImportRequest(kind="upload", path=str(target)))
    uploads.discard(target)
    assert _uploads() == []


def test_a_bad_file_name_is_refused_before_anything_is_written(root: Path) -> None:
    with pytest.raises(InvalidInputError, match="not allowed"):
        uploads.stage_upload([("config.json", b"{}"), ("../model.gguf", b"GGUF")], single_file=_model_file)
    assert _uploads() == []
