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
    """What the uploads hold, inside the owners' folders (which stay, empty, once used)."""
    return sorted(p.name for owner in config.uploads_dir().iterdir() for p in owner.iterdir())


# --------------------------------------------------------------------------- calibration uploads


def test_a_calibration_upload_is_saved_once_under_its_content_hash(root: Path) -> None:
    data = b"one line of calibration text\nanother line\n"
    path = calibration.save_upload("Quotes.TXT", data)
    assert path == uploads.owner_dir() / f"calibration-{hashlib.sha256(data).hexdigest()[:16]}.txt"
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
    assert target.name == "model.gguf" and target.parent.parent == uploads.owner_dir()
    assert target.read_bytes() == demo_gguf.read_bytes()
    src = import_now(ImportRequest(kind="upload", path=str(target)))
    assert src.origin_kind == "upload"
    assert _uploads() == []  # the import job removed its staging folder


def test_the_files_of_a_folder_are_staged_together(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    target = uploads.stage_upload(files, single_file=_model_file)
    assert target.parent == uploads.owner_dir()
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


# --------------------------------------------------------------------------- whose upload it is


def test_a_user_cannot_name_another_users_upload(root: Path, demo_gguf: Path) -> None:
    """Through the service, as the forms reach it: an upload's path (it shows in job logs) does not
    let another user import it or use it as calibration data; its owner still can."""
    from catalog import users
    from catalog.access import Actor
    from catalog.errors import PermissionDeniedError
    from service import actions

    users.add_user("eve", "editor", None)
    users.add_user("bo", "editor", None)
    eve, bo = Actor("eve", "editor"), Actor("bo", "editor")
    target = uploads.stage_upload([("model.gguf", demo_gguf.read_bytes())], single_file=_model_file, owner="bo")
    text = calibration.save_upload("lines.txt", b"calibration text\n" * 4, owner="bo")
    assert target.is_relative_to(uploads.owner_dir("bo")) and text.parent == uploads.owner_dir("bo")
    with pytest.raises(PermissionDeniedError, match="another user's upload"):
        actions.import_model(eve, ImportRequest(kind="path", path=str(target)))
    with pytest.raises(PermissionDeniedError, match="another user's upload"):  # a ../ walk is resolved first
        walk = f"{uploads.owner_dir('eve')}/../{uploads.owner_dir('bo').name}/{target.parent.name}/model.gguf"
        actions.import_model(eve, ImportRequest(kind="upload", path=walk))
    with pytest.raises(PermissionDeniedError, match="another user's upload"):
        actions.convert(eve, "llamacpp.quantize", "no-such-variant", {"calibration": str(text)})
    assert jobs.list_jobs() == [] and target.exists()
    assert actions.import_model(bo, ImportRequest(kind="upload", path=str(target))).job is not None


def test_an_upload_over_the_limit_is_refused_before_it_is_written(root: Path) -> None:
    settings = config.load_settings()
    settings.max_upload_mb = 1
    config.save_settings(settings)
    with pytest.raises(InvalidInputError, match="over the 1 MB limit for uploads"):
        uploads.stage_upload([("a.gguf", b"x" * 600_000), ("b.gguf", b"y" * 600_000)], single_file=_model_file)
    assert not config.uploads_dir().exists() or _uploads() == []


def test_an_upload_never_imported_is_an_orphan_inside_its_owners_folder(root: Path) -> None:
    from catalog import storage

    target = uploads.stage_upload([("config.json", b"{}")], single_file=_model_file, owner="bo")
    found = [o for o in storage.find_orphans() if o.reason == "upload never imported"]
    assert [o.path for o in found] == [target]  # the staged folder, not bo's whole folder
    storage.clean_orphans()
    assert not target.exists() and uploads.owner_dir("bo").exists()
