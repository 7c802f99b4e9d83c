"""Real browser: local accounts (sign in, a reload keeps the session through the signed cookie,
a viewer sees the import buttons disabled with the reason, sign out), the trusted-proxy header accepted from an
allowed address and refused from another, and OpenID Connect against a real provider on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import chromium_page, free_port, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def settings_with(**changes) -> None:
    from catalog import config

    settings = config.load_settings()
    for key, value in changes.items():
        setattr(settings, key, value)
    config.save_settings(settings)


def sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_local_accounts_in_the_browser(root: Path) -> None:
    from catalog import audit, jobs, users
    from catalog.access import Actor
    from service import actions

    users.add_user("ada", "admin", "ada's long password")
    users.add_user("vera", "viewer", "vera's long password")
    settings_with(auth="local")
    with running_app(root) as url, chromium_page() as page:
        sign_in(page, url, "vera", "not her password")
        page.get_by_text("Wrong user name or password.").wait_for()
        sign_in(page, url, "vera", "vera's long password")
        page.get_by_text("Signed in as vera.").wait_for()
        page.get_by_role("button", name="Continue").click()
        page.get_by_text("Signed in as vera (viewer)").wait_for()
        page.reload()  # a new Streamlit session: the signed cookie signs her in again
        page.get_by_text("Signed in as vera (viewer)").wait_for()
        assert page.get_by_role("button", name="Import the demo model").is_disabled()
        page.goto(f"{url}/import")  # the page says why its import buttons are disabled
        page.get_by_text("vera is a viewer, and importing a model needs the editor role").wait_for()
        assert page.get_by_role("button", name="Import the demo model").is_disabled()
        assert jobs.list_jobs() == [] and audit.entries() == []
        copied = page.context.cookies()  # what a thief with the laptop would take before sign-out
        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("Signed out.").wait_for()
        page.reload()
        page.get_by_label("User name").wait_for()  # the cookie is gone
        thief = page.context.browser.new_context()
        thief.add_cookies(copied)
        stolen = thief.new_page()
        stolen.goto(url)
        stolen.get_by_label("User name").wait_for()  # the session ended on the server
        assert "Signed in as vera" not in stolen.inner_text("body")
        thief.close()

        sign_in(page, url, "ada", "ada's long password")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Import the demo model").click()
        page.get_by_text("Follow it on the Jobs page").wait_for()
        page.goto(f"{url}/audit")
        page.get_by_text("One row per change").wait_for()
        assert "ada" in page.inner_text("body") and [e.actor for e in audit.entries()] == ["ada"]

        # an editor's open tab, demoted by an admin: the next click meets the sign-in form
        users.add_user("ed", "editor", "ed's long password")
        other = page.context.browser.new_context()
        tab = other.new_page()
        tab.set_default_timeout(60_000)
        sign_in(tab, url, "ed", "ed's long password")
        tab.get_by_role("button", name="Continue").click()
        tab.get_by_text("Signed in as ed (editor)").wait_for()
        tab.goto(f"{url}/import")
        assert tab.get_by_role("button", name="Import the demo model").is_enabled()
        actions.set_role(Actor("ada", "admin"), "ed", "viewer")
        tab.get_by_role("button", name="Import the demo model").click()
        tab.get_by_label("User name").wait_for()
        assert len(jobs.list_jobs()) == 1  # ada's import only
        other.close()


def test_a_forged_cookie_is_refused(root: Path) -> None:
    from itsdangerous import URLSafeTimedSerializer

    from catalog import session_tokens, users

    users.add_user("ada", "admin", "ada's long password")
    assert session_tokens.verify(session_tokens.issue("ada")) == "ada"
    assert session_tokens.verify(session_tokens.issue("ada") + "x") is None
    assert session_tokens.verify("eyJuYW1lIjoiYWRhIn0.forged.signature") is None
    # a cookie of the earlier kind (signed, but naming no server-side session) is refused too
    old_kind = URLSafeTimedSerializer(session_tokens._secret(), salt=session_tokens.SALT).dumps({"name": "ada"})
    assert session_tokens.verify(old_kind) is None
    assert (root / "session_secret").stat().st_mode & 0o077 == 0  # this user only


@contextmanager
def sso_proxy(app_url: str, user: str) -> Iterator[str]:
    """tests/helpers/sso_proxy.py in front of the app: every request carries X-Forwarded-User."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.sso_proxy", str(port),
                             app_url.rsplit(":", 1)[1], user], cwd=Path(__file__).resolve().parent.parent)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_proxy_header_from_an_allowed_address_only(root: Path) -> None:
    from catalog import users

    users.add_user("ed", "editor", None)
    settings_with(auth="proxy", trusted_proxies=["127.0.0.1"])  # the proxy runs on this host
    with running_app(root) as url, sso_proxy(url, "ed") as proxied, chromium_page() as page:
        page.goto(proxied)
        page.get_by_text("Signed in as ed (editor)").wait_for()
        page.goto(url)  # around the proxy: no header
        page.get_by_text("The proxy sent no X-Forwarded-User header").wait_for()
    settings_with(trusted_proxies=["10.9.8.7"])  # the header is believed from another address only
    with running_app(root) as url, sso_proxy(url, "ed") as proxied, chromium_page() as page:
        page.goto(proxied)
        page.get_by_text("did not come through it").wait_for()


OIDC_CACHE = Path(os.environ.get("MODEL_CATALOG_CACHE") or "~/.cache/model-catalog").expanduser() / "oidc-provider"


@contextmanager
def oidc_provider(redirect_uri: str, client_secret: str) -> Iterator[str]:
    """npm's oidc-provider on a loopback port (tests/helpers/oidc/provider.mjs), stopped after."""
    if not (OIDC_CACHE / "node_modules" / "oidc-provider" / "package.json").exists():
        pytest.fail(f"npm's oidc-provider is not installed in {OIDC_CACHE}; run scripts/setup.sh (it installs it)")
    # beside its node_modules, so that Node resolves the package from the script's folder
    script = OIDC_CACHE / f"provider-{os.getpid()}.mjs"
    shutil.copyfile(Path(__file__).parent / "helpers" / "oidc" / "provider.mjs", script)
    port = free_port()
    proc = subprocess.Popen(["node", str(script), str(port), redirect_uri, client_secret], cwd=OIDC_CACHE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2) as reply:
                    assert json.load(reply)["issuer"] == issuer
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the OIDC provider did not start: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.2)
        yield issuer
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
        script.unlink(missing_ok=True)


def oidc_sign_in(page, url: str, login: str) -> None:
    """Through the provider's own pages: its login form (devInteractions takes any name), then consent."""
    page.goto(url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()  # the consent prompt


def test_openid_connect_sign_in_and_out(root: Path, tmp_path: Path) -> None:
    from catalog import users

    users.add_user("olga@example.test", "editor", None)  # known: her role; anyone else: the default
    settings_with(auth="oidc")
    app_port = free_port()
    redirect = f"http://127.0.0.1:{app_port}/oauth2callback"
    with oidc_provider(redirect, "a client secret for the test") as issuer:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            f'[auth]\nredirect_uri = "{redirect}"\ncookie_secret = "{os.urandom(16).hex()}"\n'
            f'client_id = "model-catalog"\nclient_secret = "a client secret for the test"\n'
            f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
            # Streamlit asks for prompt=select_account unless told otherwise; this provider knows login
            '[auth.client_kwargs]\nprompt = "login"\n')
        # oidc-provider's own login pages link a Google font; the catalog's pages still may not
        with running_app(root, port=app_port, extra_args=("--secrets.files", str(secrets))) as url, \
                chromium_page(foreign_hosts=("fonts.googleapis.com",)) as page:
            oidc_sign_in(page, url, "olga")
            page.get_by_text("Signed in as olga@example.test (editor)").wait_for()
            page.reload()  # Streamlit's own identity cookie keeps her signed in
            page.get_by_text("Signed in as olga@example.test (editor)").wait_for()
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("button", name="Yes, sign me out").click()  # the provider's own session ends too
            page.get_by_role("button", name="Sign in with single sign-on").wait_for()
            oidc_sign_in(page, url, "ivan")
            page.get_by_text("Signed in as ivan@example.test (viewer)").wait_for()
            page.goto(f"{url}/import")
            page.get_by_text("ivan@example.test is a viewer, and importing a model needs the editor role").wait_for()
            assert page.get_by_role("button", name="Import the demo model").is_disabled()
    settings_with(auth="oidc")
    with running_app(root) as url, chromium_page() as page:  # no provider configured: one sentence
        page.goto(url)
        page.get_by_text("no provider is configured").wait_for()


def test_an_editor_imports_in_the_browser_and_is_refused_a_delete(root: Path) -> None:
    """The editor's allowed action goes through; the admin's is disabled on the page (a forged
    click is discarded by Streamlit and refused by the service: tests/test_access.py)."""
    from catalog import audit, sources, users, variants
    from tests.browser import wait_for_jobs

    users.add_user("ed", "editor", "ed's long password!")
    settings_with(auth="local")
    with running_app(root) as url, chromium_page() as page:
        sign_in(page, url, "ed", "ed's long password!")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Import the demo model").click()
        page.get_by_text("Follow it on the Jobs page").wait_for()
        wait_for_jobs(page, url)
        [src], _ = sources.list_sources()
        page.goto(f"{url}/model?id={src.id}")
        page.get_by_role("tab", name="Delete").click()
        page.get_by_text("I understand the files are removed").click()
        delete = page.get_by_role("button", name="Delete variant files")
        delete.hover()  # its tooltip says which role it needs
        page.get_by_text("ed is an editor, and deleting needs the admin role").wait_for()
        assert delete.is_disabled()
        page.goto(f"{url}/team")
        page.get_by_text("You are an editor").wait_for()
        assert page.get_by_role("button", name="Save settings").is_disabled()
    assert variants.get_variant(src.root_variant_id).state == "available"
    assert [(e.actor, e.action) for e in audit.entries()] == [("ed", "import")]
