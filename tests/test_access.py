"""Roles enforced in the service layer (not by hidden buttons), one audit row per change in the
same transaction, local accounts with argon2 and a lockout, the CLI acting as a named user, and
the app refusing to run without access control on a non-local address."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catalog import audit, config, db, jobs, users
from catalog.access import Actor
from catalog.errors import PermissionDeniedError
from service import actions

VIEWER, EDITOR, ADMIN = Actor("vera", "viewer"), Actor("ed", "editor"), Actor("ada", "admin")


def demo_request():
    """An import the tests only submit (no supervisor runs in them): the digits CNN example."""
    from backends.importers import ImportRequest

    return ImportRequest(kind="demo", example="digits-cnn")


def job_count() -> int:
    return len(jobs.list_jobs(limit=1000))


def test_a_viewer_is_refused_every_change(demo_source) -> None:
    from catalog.comparisons import list_comparisons

    vid = demo_source.root_variant_id
    attempts = {
        "import": lambda: actions.import_model(VIEWER, demo_request()),
        "convert": lambda: actions.convert(VIEWER, "llamacpp.quantize", vid, {"types": ["Q8_0"]}),
        "benchmark": lambda: actions.benchmark(VIEWER, [vid], "quick"),
        "delete": lambda: actions.delete_variant(VIEWER, vid),
        "intermediates": lambda: actions.clean_intermediates(VIEWER),
        "orphans": lambda: actions.clean_orphans(VIEWER),
        "notes": lambda: actions.edit_notes(VIEWER, demo_source.id, shown_notes="", notes="x", shown_tags=[],
                                            tags=[]),
        "comparison": lambda: actions.save_comparison(VIEWER, "mine", {"result_ids": ["r-1"]}),
        "settings": lambda: actions.save_settings(VIEWER, config.load_settings()),
        "users": lambda: actions.add_user(VIEWER, "eve", "admin", "a long enough password"),
    }
    before = job_count()
    for what, attempt in attempts.items():
        with pytest.raises(PermissionDeniedError, match="vera is a viewer") as refused:
            attempt()
        assert "ask an admin" in str(refused.value), what
    assert job_count() == before and list_comparisons() == [] and users.list_users() == []
    # nothing changed, and every attempt is on record: who tried what, refused with which sentence
    refused = list(reversed(audit.entries()))
    assert [(e.actor, e.action) for e in refused] == [("vera", "refused")] * len(attempts)
    assert [e.detail["tried"] for e in refused] == ["import_model", "convert", "benchmark", "delete_variant",
                                                    "clean_intermediates", "clean_orphans", "edit_notes",
                                                    "save_comparison", "save_settings", "add_user"]
    assert refused[3].object_id == vid and "vera is a viewer" in refused[3].detail["reason"]
    assert refused[0].object_id == "digits-cnn" and refused[-1].object_id == "eve"


def test_an_editor_converts_but_does_not_delete(demo_source) -> None:
    vid = demo_source.root_variant_id
    sub = actions.import_model(EDITOR, demo_request())
    assert sub.job is not None and jobs.get_job(sub.job.id).submitted_by == "ed"
    with pytest.raises(PermissionDeniedError, match="deleting needs the admin role"):
        actions.delete_variant(EDITOR, vid)
    with pytest.raises(PermissionDeniedError, match="trust_remote_code"):
        req = demo_request()
        req.trust_remote_code = True
        actions.import_model(EDITOR, req)
    actions.delete_variant(ADMIN, vid)
    rows = audit.entries()
    assert [(e.actor, e.action, e.object_id) for e in reversed(rows)] == [
        ("ed", "import", sub.job.id), ("ed", "refused", vid), ("ed", "refused", "digits-cnn"),
        ("ada", "delete_variant", vid)]
    assert rows[-1].detail["example"] == "digits-cnn"  # which example was imported


def test_cleaning_intermediates_is_an_admins_audited_delete(demo_source) -> None:
    """The Storage page's cleanup goes through the service like any delete: refused to an editor,
    and one audit row per intermediate removed."""
    from catalog import variants

    vid = demo_source.root_variant_id
    with db.connect() as conn:  # an F16 kept only as a step towards its quants looks like this
        conn.execute("UPDATE variants SET intermediate = true WHERE id = ?", [vid])
    with pytest.raises(PermissionDeniedError, match="deleting needs the admin role"):
        actions.clean_intermediates(EDITOR)
    assert variants.get_variant(vid).state == "available"
    assert [(e.actor, e.action, e.detail["tried"]) for e in audit.entries()] == [
        ("ed", "refused", "clean_intermediates")]  # one attempt, one row (not one per variant)
    assert actions.clean_intermediates(ADMIN) > 0
    assert variants.get_variant(vid).state == "deleted"
    assert [(e.actor, e.action, e.object_id) for e in audit.entries()][0] == ("ada", "delete_variant", vid)


def test_a_viewers_buttons_are_disabled_and_a_forged_click_does_nothing(demo_source,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages disable what the role may not do and say why on hover. A click the browser would
    never send (AppTest's own guard lifted, as a crafted websocket message would) is discarded by
    Streamlit for a disabled widget; the service refuses everything else: nothing is deleted."""
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1.element_tree import Widget

    from catalog import session_tokens, variants
    from ui.session import SESSION_KEY

    settings = config.load_settings()
    settings.auth = "local"
    config.save_settings(settings)
    users.add_user(VIEWER.name, VIEWER.role, "a long enough password")
    at = AppTest.from_file(str(config.PROJECT_DIR / "pages" / "model.py"), default_timeout=60)
    at.session_state[SESSION_KEY] = session_tokens.issue(VIEWER.name)
    at.query_params["id"] = demo_source.id
    at.run()

    def button(label: str):
        return next(b for b in at.button if b.label == label)

    assert button("Delete variant files").disabled and button("Save").disabled
    assert "deleting needs the admin role" in button("Delete variant files").help
    assert "editing notes and tags needs the editor role" in button("Save").help
    at.checkbox(key="confirm_delete").check().run()
    monkeypatch.setattr(Widget, "_assert_can_interact", lambda self: None)
    button("Delete variant files").click().run()
    assert not at.error  # discarded before the page's handler: the service was not even asked
    assert variants.get_variant(demo_source.root_variant_id).state == "available" and audit.entries() == []


def test_no_change_without_its_audit_row(demo_source, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure injection: the audit insert fails, so the change it belongs to is rolled back."""
    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the audit row")

    from catalog import variants

    before = job_count()
    with monkeypatch.context() as patch:
        patch.setattr(audit, "record", broken)
        with pytest.raises(RuntimeError):
            actions.import_model(EDITOR, demo_request())
        with pytest.raises(RuntimeError):
            actions.delete_variant(ADMIN, demo_source.root_variant_id)
    assert job_count() == before
    root = variants.get_variant(demo_source.root_variant_id)
    assert root.state == "available" and variants.files_state(root) == "available"


KILLED_MID_CHANGE = """
import os, signal
from catalog import audit
from service import actions
from catalog.access import Actor
from backends.importers import ImportRequest

real = audit.record
def record_then_die(*args, **kwargs):
    real(*args, **kwargs)           # the change and its row are written, not yet committed
    os.kill(os.getpid(), signal.SIGKILL)
audit.record = record_then_die
actions.import_model(Actor("ed", "editor"), ImportRequest(kind="demo", example="digits-cnn"))
"""


def test_a_process_killed_mid_change_leaves_neither(root: Path) -> None:
    before = job_count()
    env = dict(os.environ, **{config.ROOT_ENV: str(root)})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_MID_CHANGE)], cwd=config.PROJECT_DIR,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == -9, done.stderr
    db.reset_migration_cache()
    assert job_count() == before and audit.entries() == []


def test_local_accounts_hash_and_lock_out(root: Path) -> None:
    actions.add_user(ADMIN, "ed", "editor", "correct horse battery")
    with db.connect(write=False) as conn:
        stored = conn.scalar("SELECT password_hash FROM users WHERE name = 'ed'")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert users.sign_in("ed", "correct horse battery") == Actor("ed", "editor")
    with pytest.raises(PermissionDeniedError, match="Wrong user name or password"):
        users.sign_in("nobody", "correct horse battery")
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(PermissionDeniedError, match="Wrong user name or password"):
            users.sign_in("ed", "wrong password!!")
    with pytest.raises(PermissionDeniedError, match="locked until"):
        users.sign_in("ed", "correct horse battery")  # even the right password, while locked
    actions.set_role(ADMIN, "ed", "editor")  # an admin unlocks
    assert users.sign_in("ed", "correct horse battery").role == "editor"
    with pytest.raises(Exception, match="at least 12"):
        actions.add_user(ADMIN, "short", "viewer", "short")
    assert [e.action for e in reversed(audit.entries())] == ["add_user", "set_role"]


def cli(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", "--data-root", str(root), *args], cwd=config.PROJECT_DIR,
                          input=stdin, capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_acts_as_a_named_user(demo_source, root: Path) -> None:
    added = cli(root, "users", "add", "boss", "--role", "admin", "--password-stdin", stdin="a long admin password\n")
    assert added.returncode == 0, added.stderr
    assert cli(root, "users", "add", "vera", "--role", "viewer", "--no-password").returncode == 0
    refused = cli(root, "--as", "vera", "delete", demo_source.root_variant_id, "--yes")
    assert refused.returncode == 5 and "vera is a viewer" in refused.stderr
    assert cli(root, "--as", "vera", "users", "add", "eve", "--role", "admin", "--no-password").returncode == 5
    ghost = cli(root, "--as", "ghost", "list")  # reading too: --as names a user who exists
    assert ghost.returncode == 3 and "There is no user ghost" in ghost.stderr and ghost.stdout == ""
    empty = cli(root, "--as", "", "users", "add", "eve", "--role", "admin", "--no-password")
    assert empty.returncode == 2 and "--as needs a user name" in empty.stderr  # never the shell's admin
    assert users.get_user("eve") is None
    ok = cli(root, "--as", "boss", "delete", demo_source.root_variant_id, "--yes")
    assert ok.returncode == 0, ok.stderr
    who = [(e.actor, e.action) for e in reversed(audit.entries())]
    assert who[-1] == ("boss", "delete_variant") and who[0][1] == "add_user"


def test_the_audit_log_is_append_only() -> None:
    from tests.test_layout import project_files

    offenders = [str(p) for p in project_files()
                 if any(s in p.read_text() for s in ("UPDATE audit_log", "DELETE FROM audit_log"))]
    assert offenders == []


def test_auth_off_refuses_a_non_local_address(root: Path) -> None:
    from streamlit import config as st_config
    from streamlit.testing.v1 import AppTest

    page = "import streamlit as st\nfrom ui.session import current_actor\nst.write(current_actor().name)\n"
    previous = st_config.get_option("server.address")
    try:
        st_config.set_option("server.address", "0.0.0.0")
        at = AppTest.from_string(page, default_timeout=60).run()
        assert "allowed only while the app listens on localhost" in at.error[0].value
        st_config.set_option("server.address", "localhost")
        at = AppTest.from_string(page, default_timeout=60).run()
        assert not at.error and at.markdown[0].value == config.local_user()
    finally:
        st_config.set_option("server.address", previous)


def test_with_auth_on_imports_read_only_the_inbox_and_the_hf_cache(root: Path) -> None:
    (root / "config.json").write_text('{"auth": "local"}')  # a team that set only the mode
    roots = [str(p) for p in config.load_settings().allowed_paths]
    assert str(root / "inbox") in roots and not any(r in (str(Path.home()), "/tmp") for r in roots)
    assert any(r.endswith("hub") for r in roots)


def test_the_team_page_saves_settings_and_users_for_an_admin_only(root: Path) -> None:
    """The page as the local admin (auth off): a bad folder is one sentence, a good change is saved
    with its audit row, a user is added; the service refuses the same changes from an editor."""
    from streamlit.testing.v1 import AppTest

    page = str(config.PROJECT_DIR / "pages" / "team.py")
    at = AppTest.from_file(page, default_timeout=60).run()
    at.text_area(key="tm_roots").set_value("relative/folder")
    at.button[0].click().run()  # the settings form's submit
    assert "not an absolute folder path" in at.error[0].value and audit.entries() == []
    at.text_area(key="tm_roots").set_value(f"{root}/inbox\n/srv/models")
    at.number_input(key="tm_upload").set_value(64)
    at.button[0].click().run()
    assert config.load_settings().allowed_roots == [f"{root}/inbox", "/srv/models"]
    assert config.load_settings().max_upload_mb == 64
    at.text_input(key="tm_new_name").set_value("ed")
    at.selectbox(key="tm_new_role").set_value("editor")
    at.button[1].click().run()
    assert users.get_user("ed").role == "editor"
    assert [e.action for e in audit.entries()][::-1] == ["change_settings", "add_user"]
    with pytest.raises(PermissionDeniedError, match="ed is an editor, and changing the data root's settings"):
        actions.save_settings(EDITOR, config.Settings())
    with pytest.raises(PermissionDeniedError, match="managing users"):
        actions.set_role(EDITOR, "ed", "admin")
    assert config.load_settings().max_upload_mb == 64 and users.get_user("ed").role == "editor"


HOSTILE = "Ship <script>alert(1)</script><img src=x onerror=alert(2)> [docs](javascript:alert(3))"


def test_hostile_names_notes_and_tags_are_shown_as_typed(demo_source) -> None:
    """User text reaches markdown escaped on the Catalog, Model and Jobs pages: no tag, no link."""
    from streamlit.testing.v1 import AppTest

    from catalog.errors import InvalidInputError
    from ui.fmt import escape_md

    with pytest.raises(InvalidInputError, match="is not allowed"):  # a tag is a name: no markup at all
        actions.edit_notes(EDITOR, demo_source.id, shown_notes="", notes="", shown_tags=[], tags=[HOSTILE])
    actions.edit_notes(EDITOR, demo_source.id, shown_notes="", notes=HOSTILE, shown_tags=[], tags=["ok"])
    with db.connect() as conn:  # names are checked when typed; an older catalog may still hold anything
        conn.execute("UPDATE sources SET name = ?, added_by = ? WHERE id = ?", [HOSTILE, HOSTILE, demo_source.id])
        conn.execute("UPDATE jobs SET title = ?, submitted_by = ?", [HOSTILE, HOSTILE])
    pages = config.PROJECT_DIR / "pages"
    catalog = AppTest.from_file(str(pages / "browse.py"), default_timeout=60).run()
    model = AppTest.from_file(str(pages / "model.py"), default_timeout=60)
    model.query_params["id"] = demo_source.id
    model.run()
    jobs_page = AppTest.from_file(str(pages / "jobs.py"), default_timeout=60).run()
    for at in (catalog, model, jobs_page):
        assert not at.exception
        shown = [e.value for e in (*at.markdown, *at.caption, *at.title) if "Ship" in str(e.value)]
        assert shown, "the hostile text is shown somewhere"
        for text in shown:
            assert not re.search(r"(?<!\\)<", text) and "](javascript" not in text  # every < escaped, no link
            assert escape_md(HOSTILE) in text
    assert model.text_area[0].value == HOSTILE  # the notes field shows the text itself, as a value
