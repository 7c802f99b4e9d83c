"""Starting the real app and a headless Chromium for browser tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot: into the checkout's docs/ (the README's pictures) only when
    MC_SCREENSHOTS=docs, so that a test run never leaves the checkout modified; otherwise
    under the system temp folder, where a failing run's last pictures can still be looked at."""
    target = os.environ.get("MC_SCREENSHOTS", "")
    folder = REPO / "docs" if target == "docs" else Path(target or tempfile.gettempdir()) / "model-catalog-shots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(data_root: Path, port: int | None = None, extra_args: tuple[str, ...] = (),
                app_dir: Path = REPO) -> Iterator[str]:
    """`streamlit run app.py` on a free (or the given) localhost port with its own data root
    (app_dir: another checkout's app, e.g. the perf script's before-and-after figures)."""
    port = port or free_port()
    data_root.mkdir(parents=True, exist_ok=True)
    failed_before = _failed_jobs(data_root)
    env = dict(os.environ, MODEL_CATALOG_HOME=str(data_root))
    log = open(data_root.parent / "streamlit.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", *extra_args],
        cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        _warm_up(url)
        _FAILED_BEFORE[url], _ROOTS[url] = failed_before, data_root
        yield url
    finally:
        _FAILED_BEFORE.pop(url, None)
        _ROOTS.pop(url, None)
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


# Jobs that had failed in a root before its app started, by the app's URL: an earlier test's
# deliberate failure (a refused recipe) is no failure of the jobs a browser test waits for.
_FAILED_BEFORE: dict[str, set[str]] = {}
_ROOTS: dict[str, Path] = {}  # each app's data root: failures are read from its catalog too


def _jobs_in(data_root: Path, states: tuple[str, ...]) -> set[str]:
    from catalog import config, db, jobs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.ROOT_ENV, str(data_root))
        db.reset_migration_cache()
        found = {j.id for j in jobs.list_jobs(states=states, limit=100_000)}
    db.reset_migration_cache()
    return found


def _failed_jobs(data_root: Path) -> set[str]:
    return _jobs_in(data_root, ("failed",))


def _wait_in_catalog(data_root: Path, timeout_s: int) -> None:
    """Until the app's catalog holds no active job: read there twice a second instead of reloading
    the Jobs page every 2-3 s, whose renders took CPU from the jobs themselves."""
    from catalog.records import ACTIVE_JOB_STATES

    deadline = time.monotonic() + timeout_s
    while _jobs_in(data_root, ACTIVE_JOB_STATES) and time.monotonic() < deadline:
        time.sleep(0.5)


def _warm_up(url: str) -> None:
    """Open the root once. Until app.py has run in some session, a fresh Streamlit server routes a
    deep link (/jobs) through its legacy pages/ discovery instead of st.navigation."""
    with chromium_page() as page:
        page.goto(url)
        page.get_by_text("Data root:").wait_for()


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def leaves_machine(url: str) -> bool:
    """True for a request to anything but this machine (data:, blob: and about: stay local)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension", "file"):
        return False
    return (parts.hostname or "") not in LOCAL_HOSTS


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000, foreign_hosts: tuple[str, ...] = ()) -> Iterator:
    """A page in headless Chromium. Every request the page makes is recorded, and the test fails
    if any of them leaves the machine (a font, an icon, usage statistics...). foreign_hosts: hosts
    that pages other than the catalog's ask for (a test identity provider's font), refused unasked."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing; run scripts/setup.sh")
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        for host in foreign_hosts:
            context.route(f"https://{host}/**", lambda route: route.abort())
        context.on("request", lambda request: outside.append(request.url)
                   if leaves_machine(request.url) and urlsplit(request.url).hostname not in foreign_hosts else None)
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()
    assert not outside, f"the page made {len(outside)} request(s) that leave the machine: {outside[:5]}"


# --------------------------------------------------------------------------- page actions


JOB_LISTED = re.compile(r"\bj-[0-9a-f]{12}\b|No jobs yet")
FAILED_JOB = re.compile(r" · failed · (j-[0-9a-f]{12})\b")


def wait_for_jobs(page, url: str, timeout_s: int = 600) -> None:
    """Reload the Jobs page until nothing is queued, waiting or running; no job may have failed
    since the app started. The page is read once the app's catalog says its jobs are over."""
    if url in _ROOTS:
        _wait_in_catalog(_ROOTS[url], timeout_s)
    for _ in range(timeout_s // 2):
        page.goto(f"{url}/jobs")
        page.get_by_text("Jobs run in their own processes").wait_for()
        # The list is a fragment that renders after the caption: on a loaded machine, reading the
        # body before it would see no running job and return while one still runs.
        page.get_by_text(JOB_LISTED).first.wait_for()
        page.wait_for_timeout(1500)
        body = page.inner_text("body")
        if not any(s in body for s in (" · queued ·", " · running ·", " · waiting on parent job ·",
                                       " · waiting for a worker ·")):
            failed = set(FAILED_JOB.findall(body)) - _FAILED_BEFORE.get(url, set())
            assert not failed, body[-2000:]
            # The page lists the 20 most recent ended jobs: an earlier failure is read from the catalog.
            if url in _ROOTS:
                failed = _failed_jobs(_ROOTS[url]) - _FAILED_BEFORE[url]
                assert not failed, f"failed since the app started: {sorted(failed)}"
            return
    raise AssertionError("jobs did not finish")


def submit_conversion(page, url: str, query: str, tick: str | None = None) -> None:
    """Open the Convert page preset by query, optionally tick a box pre-flight asks for, submit."""
    page.goto(f"{url}/convert?{query}")
    page.get_by_text("Input variant", exact=True).wait_for()
    if tick:  # e.g. allow requantize: until it is ticked, pre-flight refuses and there is no plan
        page.get_by_text("already quantized").first.wait_for()
        page.get_by_text(tick, exact=True).click()
    page.get_by_text("Plan", exact=True).wait_for()
    page.get_by_role("button", name="Submit").click()
    # A new job, or the variant an earlier test of the session already made with the same recipe.
    page.get_by_text(re.compile(r"Queued job|This variant already exists|already being made")).first.wait_for()


def _type_until_offered(page, picker, v, tries: int = 6) -> None:
    """Type the variant's id into the multiselect until its option shows. A rerun of the page
    while typing (a loaded machine renders late) recreates the widget and drops the typed text:
    seen once as an empty option list with the placeholder back."""
    option = page.get_by_role("option", name=f"{v.label} · {v.id}")
    for _ in range(tries):
        picker.locator("input").fill(v.id)
        try:
            option.wait_for(timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - typed again below; the last try reports what was offered
            continue
    shot = screenshot(page, f"benchmarks-pick-{v.id}.png")
    offered = page.get_by_role("option").all_inner_texts()
    raise AssertionError(f"{v.label} · {v.id} not offered; options {offered}; page {shot}")


def open_expander(page, label: str):
    """Open the page's expander of this label unless it is open, as a click on its header does; its
    content locator. A lazy expander's content is drawn only once it is open (a rerun): its state is
    read from the details' inert mark, not from the content's visibility, since clicking the header
    while an open expander's content is still coming would close it."""
    expander = page.locator("[data-testid='stExpander']").filter(has_text=label)
    details = expander.locator("[data-testid='stExpanderDetails']")
    expander.wait_for(state="attached", timeout=180_000)  # a loaded machine renders slowly
    if not details.count() or details.get_attribute("inert") is not None:
        expander.get_by_text(label, exact=True).click()
    opened = expander.locator("[data-testid='stExpanderDetails']:not([inert])")
    opened.wait_for()
    return opened


def run_benchmarks(page, url: str, source_id: str, variants: list) -> None:
    """Pick variants on the Benchmarks page (typing each id filters the options to one), run them,
    wait for the jobs, and reopen the page on the results."""
    page.goto(f"{url}/benchmarks?source={source_id}")
    # The expander starts closed once the source has results (an earlier test's).
    picker = open_expander(page, "Run benchmarks").locator("[data-testid='stMultiSelect']").first
    picker.wait_for(timeout=180_000)
    for v in variants:
        _type_until_offered(page, picker, v)
        page.keyboard.press("Enter")
        picker.get_by_text(f"{v.label} · {v.id}").wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Queued job").first.wait_for()
    wait_for_jobs(page, url)
    page.goto(f"{url}/benchmarks?source={source_id}")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
