"""Inputs a team really has, and the sentences they read: names read from files (a GGUF's
general.name with a slash, a folder "digits [v2]") become allowed names; messages name the model
as the user knows it (never "files/", "out" or a snapshot's commit hash); a read-only data root
can be browsed; a FIFO, an overlong name and NaN calibration images each get one clear sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backends.importers import ImportRequest, import_now, submit_import
from catalog import config, variants
from catalog.errors import InvalidInputError
from catalog.files import NAME_MAX, validate_name
from tests.helpers.models import tiny_gguf, tiny_hf_folder
from tests.test_import import make_hf_cache

REPO = Path(__file__).resolve().parent.parent


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and "Traceback" not in message


def _refusal(req: ImportRequest) -> str:
    with pytest.raises(InvalidInputError) as info:
        submit_import(req)
    message = str(info.value)
    assert _one_sentence(message), message
    return message


# ------------------------------------------------------------------------ item 9: names from files


def test_a_gguf_general_name_with_a_slash_becomes_an_allowed_name(root: Path, tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "llama.gguf", name="meta-llama/Llama-3.2-1B-Instruct")
    source = import_now(ImportRequest(kind="path", path=str(path)))
    assert source.name == "meta-llama Llama-3.2-1B-Instruct"
    assert variants.get_variant(source.root_variant_id).metadata["name_in_file"] == "meta-llama/Llama-3.2-1B-Instruct"


def test_a_folder_named_with_brackets_becomes_an_allowed_name(root: Path, tmp_path: Path) -> None:
    source = import_now(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "digits [v2]"))))
    assert source.name == "digits v2"
    assert variants.get_variant(source.root_variant_id).metadata["name_in_file"] == "digits [v2]"


def test_a_name_given_by_the_user_is_kept_as_given(root: Path, tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "llama.gguf", name="meta-llama/Llama-3.2-1B-Instruct")
    source = import_now(ImportRequest(kind="path", path=str(path), name="Llama  3.2 (team copy)"))
    assert source.name == "Llama  3.2 (team copy)"
    assert "name_in_file" not in variants.get_variant(source.root_variant_id).metadata


# ------------------------------------------------------------------------ item 12: one clear sentence


def test_a_config_that_is_not_json_is_named_by_the_users_folder(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "my-encoder")
    (folder / "config.json").write_text("{not json")
    message = _refusal(ImportRequest(kind="path", path=str(folder)))
    assert "my-encoder" in message and "files/" not in message and "not a valid JSON" in message


def test_hf_cache_messages_name_the_repo_not_the_snapshot(root: Path, tmp_path: Path) -> None:
    model = tiny_hf_folder(tmp_path / "tiny")
    (model / "config.json").unlink()
    commit = make_hf_cache(tmp_path / "hub", "acme/tiny", model)
    message = _refusal(ImportRequest(kind="hf_cache", path=str(tmp_path / "hub"), repo_id="acme/tiny"))
    assert message.startswith("acme/tiny has no config.json") and commit not in message


def test_an_encoder_without_a_tokenizer_is_not_called_by_its_work_folder(tmp_path: Path) -> None:
    from workloads.encoder_classifier_inputs import tokenizer_file

    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInputError) as info:
        tokenizer_file(tmp_path / "out")
    message = str(info.value)
    assert _one_sentence(message) and not message.startswith("out ") and "tokenizer.json" in message


def test_nan_calibration_images_are_refused_in_one_sentence(tmp_path: Path) -> None:
    """onnxruntime's calibrator would stop with "AssertionError: scale issue"."""
    from workloads.datasets import read_calibration_images

    images = np.full((16, 1, 8, 8), 0.5, dtype=np.float32)
    images[3, 0, 2, 2] = np.nan
    np.save(tmp_path / "images.npy", images)
    with pytest.raises(InvalidInputError) as info:
        read_calibration_images(tmp_path / "images.npy")
    message = str(info.value)
    assert _one_sentence(message) and "NaN" in message and "scale issue" not in message


def test_an_overlong_name_is_refused_with_the_limit() -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_name("a" * 10_000)
    message = str(info.value)
    assert _one_sentence(message) and str(NAME_MAX) in message and "10,000" in message


def test_a_fifo_named_like_a_model_is_not_called_a_folder(root: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    message = _refusal(ImportRequest(kind="path", path=str(fifo)))
    assert "neither a regular file nor a folder" in message and "config.json" not in message


@pytest.fixture
def read_only_root(root: Path, tmp_path: Path) -> Iterator[Path]:
    """The test's data root, with one imported model, seen through a read-only bind mount."""
    import_now(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny"))))
    view = tmp_path / "read-only"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(root), str(view)], capture_output=True, check=False).returncode:
        pytest.skip("bind mounts need root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=False)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(config.ROOT_ENV, None)
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120, check=False)


def test_a_read_only_data_root_can_be_browsed_and_says_so_on_writes(read_only_root: Path, tmp_path: Path) -> None:
    listed = _cli("--data-root", str(read_only_root), "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "tiny"
    shown = _cli("--data-root", str(read_only_root), "show", row["id"])
    assert shown.returncode == 0 and "tiny" in shown.stdout, shown.stderr
    listed_jobs = _cli("--data-root", str(read_only_root), "jobs", "list")
    assert listed_jobs.returncode == 0 and "succeeded" in listed_jobs.stdout, listed_jobs.stderr
    imported = _cli("--data-root", str(read_only_root), "import", str(tiny_hf_folder(tmp_path / "other", seed=1)))
    assert imported.returncode == 2
    error = imported.stderr.strip()
    assert "Traceback" not in error and "Errno" not in error, error
    assert error.startswith("error: The data root") and "read-only" in error and error.count("\n") == 0


def test_an_export_into_a_read_only_folder_says_so(read_only_root: Path, root: Path) -> None:
    [row] = json.loads(_cli("--data-root", str(root), "list", "--json").stdout)
    exported = _cli("--data-root", str(root), "export", row["root_variant_id"], str(read_only_root / "exports"))
    assert exported.returncode == 2
    error = exported.stderr.strip()
    assert error == f"error: {read_only_root / 'exports'} is on a read-only file system; choose a folder this " \
                    "user can write to.", error


def test_a_duplicate_key_reads_as_one_sentence_not_a_constraint_exception(root: Path) -> None:
    from catalog import db
    from catalog.errors import ConflictError

    with pytest.raises(ConflictError) as info, db.connect() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('0001_initial', now())")
    message = str(info.value)
    assert _one_sentence(message) and "Constraint" not in message and "Duplicate" not in message
    with db.connect(write=False) as conn:  # rolled back, and the catalog still opens
        assert conn.scalar("SELECT count(*) FROM schema_migrations WHERE name = '0001_initial'") == 1
