"""Sessions that end when they should, and user input that cannot hang the catalog (the second
audit's N1, N2, N3 and N5): server-side sessions revoked by sign-out, a role or password change
and an admin; the role read from the catalog at every action; special files refused before any
read and outside the catalog's lock; the Hugging Face cache listed only to importers, only
inside the allowed folders."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import audit, config, session_tokens, users
from catalog.access import Actor
from catalog.errors import InvalidInputError, PermissionDeniedError
from service import actions
from tests.helpers.models import tiny_hf_folder

ADMIN = Actor("ada", "admin")
PASSWORD = "a long enough password"


def _local_auth() -> None:
    settings = config.load_settings()
    settings.auth = "local"
    config.save_settings(settings)


def test_a_copied_cookie_is_worthless_after_sign_out(root: Path) -> None:
    users.add_user("ed", "editor", PASSWORD)
    token = session_tokens.issue("ed")
    copy = str(token)
    assert session_tokens.verify(copy) == "ed"
    session_tokens.revoke(token)
    assert session_tokens.verify(copy) is None
    assert session_tokens.verify(session_tokens.issue("ed") + "x") is None  # forged
    assert (root / "session_secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("ending", ["role", "password", "admin"])
def test_a_role_change_a_password_change_and_an_admin_end_every_session(root: Path, ending: str) -> None:
    users.add_user("ed", "editor", PASSWORD)
    tokens = [session_tokens.issue("ed") for _ in range(2)]  # two browsers
    other = session_tokens.issue(users.add_user("olga", "editor", PASSWORD).name)
    assert [s.user_name for s in session_tokens.open_sessions("ed")] == ["ed", "ed"]
    if ending == "role":
        actions.set_role(ADMIN, "ed", "viewer")
    elif ending == "password":
        actions.set_password(ADMIN, "ed", "another long password")
    else:
        assert actions.sign_out_user(ADMIN, "ed") == 2
    assert [session_tokens.verify(t) for t in tokens] == [None, None]
    assert session_tokens.verify(other) == "olga"  # nobody else is signed out
    assert session_tokens.open_sessions("ed") == []
    assert audit.entries()[0].detail["sessions_ended"] == 2


def test_only_an_admin_signs_others_out_and_a_user_may_change_only_their_own_password(root: Path) -> None:
    users.add_user("ed", "editor", PASSWORD)
    users.add_user("olga", "editor", PASSWORD)
    with pytest.raises(PermissionDeniedError, match="admin"):
        actions.sign_out_user(Actor("ed", "editor"), "olga")
    with pytest.raises(PermissionDeniedError, match="admin"):
        actions.set_password(Actor("ed", "editor"), "olga", "a password of mine")
    actions.set_password(Actor("ed", "editor"), "ed", "my own new password")
    assert users.sign_in("ed", "my own new password").name == "ed"


def test_a_demotion_applies_to_the_next_action_whatever_the_caller_remembers(root: Path) -> None:
    from backends.importers import ImportRequest

    users.add_user("ed", "editor", PASSWORD)
    remembered = Actor("ed", "editor")  # what a page, a fragment or a session held
    actions.set_role(ADMIN, "ed", "viewer")
    with pytest.raises(PermissionDeniedError, match="ed is a viewer"):
        actions.import_model(remembered, ImportRequest(kind="demo", example="digits-cnn"))


def test_an_open_page_sees_a_demotion_and_a_sign_out_on_its_next_run(root: Path) -> None:
    """The AppTest session plays an open browser tab: signed in as an editor, its buttons work;
    after the admin's demotion (which ends its session) the next run shows the sign-in form."""
    from streamlit.testing.v1 import AppTest

    from ui.session import SESSION_KEY

    _local_auth()
    users.add_user("ed", "editor", PASSWORD)
    at = AppTest.from_file(str(config.PROJECT_DIR / "pages" / "import_model.py"), default_timeout=60)
    at.session_state[SESSION_KEY] = session_tokens.issue("ed")
    at.run()
    assert not at.exception
    assert not next(b for b in at.button if b.label == "Import the demo model").disabled
    actions.set_role(ADMIN, "ed", "viewer")
    at.run()
    assert "Sign in" in [t.value for t in at.title]
    assert not any(b.label == "Import the demo model" for b in at.button)


# --------------------------------------------------------------------------- hostile paths


def _cli(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "cli.py", "--data-root", str(root), *args], cwd=config.PROJECT_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MODEL_CATALOG_HOME=str(root)))


@pytest.mark.parametrize("inside", ["model.gguf", "model.onnx", "sub/tokenizer.json"])
def test_a_named_pipe_in_a_folder_is_refused_and_holds_nobody_up(root: Path, tmp_path: Path, inside: str) -> None:
    """Before: `import F` blocked in open() on the FIFO while holding the catalog's lock, and a
    second user's `list` failed after 121 s. Now the import is refused from metadata alone, and
    the list beside it answers at once."""
    folder = tiny_hf_folder(tmp_path / "F")
    (folder / inside).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / inside)
    started = time.monotonic()
    importing = _cli(root, "import", str(folder))
    listing = _cli(root, "list")
    try:
        _, listed_err = listing.communicate(timeout=60)
        _, import_err = importing.communicate(timeout=60)
    finally:
        for proc in (importing, listing):
            proc.kill()
    assert listing.returncode == 0, listed_err
    assert importing.returncode != 0
    assert f"{inside} is a named pipe, not a regular file" in import_err
    assert time.monotonic() - started < 60
    from catalog import jobs
    assert jobs.list_jobs(limit=10) == []  # refused before any job row


def test_a_special_file_given_directly_or_through_a_link_is_refused(root: Path, tmp_path: Path) -> None:
    from backends.importers import ImportRequest, preflight

    os.mkfifo(tmp_path / "pipe.gguf")
    folder = tiny_hf_folder(tmp_path / "linked")
    (folder / "model.gguf").symlink_to(tmp_path / "pipe.gguf")
    with pytest.raises(InvalidInputError, match="neither a regular file nor a folder"):
        preflight(ImportRequest(kind="path", path=str(tmp_path / "pipe.gguf")))
    with pytest.raises(InvalidInputError, match="model.gguf is a named pipe"):
        preflight(ImportRequest(kind="path", path=str(folder)))


def test_a_huge_tree_is_refused_without_walking_all_of_it(root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog import files

    monkeypatch.setattr(files, "MAX_TREE_ENTRIES", 50)
    folder = tiny_hf_folder(tmp_path / "many")
    for i in range(60):
        (folder / f"extra{i}.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="more than 50 files and folders"):
        files.check_regular_tree(folder)


def _fake_hf_cache(where: Path) -> Path:
    """A real cache layout (models--org--name/{blobs,refs,snapshots}), as huggingface_hub writes it."""
    repo = where / "models--secretorg--private-model"
    snap = repo / "snapshots" / "abababab"
    tiny_hf_folder(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abababab")
    (repo / "blobs").mkdir()
    return where


def test_the_hf_cache_is_listed_only_to_importers_and_only_inside_allowed_folders(root: Path, tmp_path: Path) -> None:
    """Before: a viewer typed any server folder into the Local HF cache box and saw its models."""
    outside = _fake_hf_cache(Path(os.environ.get("TMPDIR", "/tmp")) / f"mc-outside-{os.getpid()}")
    inside = _fake_hf_cache(tmp_path / "cache")
    try:
        with pytest.raises(PermissionDeniedError, match="vera is a viewer"):
            actions.hf_cache_models(Actor("vera", "viewer"), str(inside))
        with pytest.raises(InvalidInputError, match="outside the folders imports may read"):
            actions.hf_cache_models(Actor("ed", "editor"), str(outside))
        listed = actions.hf_cache_models(Actor("ed", "editor"), str(inside))
        assert [m["repo_id"] for m in listed] == ["secretorg/private-model"]
    finally:
        import shutil
        shutil.rmtree(outside, ignore_errors=True)
