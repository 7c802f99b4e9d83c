"""Real browser: local accounts (sign in, a reload keeps the session through the signed cookie,
a viewer's import is refused by the server, sign out), and the trusted-proxy header accepted
from an allowed address and refused from another."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
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
        page.get_by_role("button", name="Import the demo model").click()
        page.get_by_text("vera is a viewer, and importing a model needs the editor role").wait_for()
        assert jobs.list_jobs() == [] and audit.entries() == []
        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("Signed out.").wait_for()
        page.reload()
        page.get_by_label("User name").wait_for()  # the cookie is gone

        sign_in(page, url, "ada", "ada's long password")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Import the demo model").click()
        page.get_by_text("Follow it on the Jobs page").wait_for()
        page.goto(f"{url}/audit")
        page.get_by_text("One row per change").wait_for()
        assert "ada" in page.inner_text("body") and [e.actor for e in audit.entries()] == ["ada"]


def test_a_forged_cookie_is_refused(root: Path) -> None:
    from catalog import session_tokens, users

    users.add_user("ada", "admin", "ada's long password")
    assert session_tokens.verify(session_tokens.issue("ada")) == "ada"
    assert session_tokens.verify(session_tokens.issue("ada") + "x") is None
    assert session_tokens.verify("eyJuYW1lIjoiYWRhIn0.forged.signature") is None
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
