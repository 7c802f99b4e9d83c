"""Model Catalog: the router. `streamlit run app.py` (see README)."""

from __future__ import annotations

import logging

import streamlit as st

from backends.registry import apply_offline_environment
from catalog import config, db
from catalog.access import ROLE_SUMMARY
from ui import fmt
from ui.session import current_actor, sign_out
from worker.supervisor import ensure_running

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
apply_offline_environment()
# The tab icon is a local file: a ":material/...:" page_icon makes every browser fetch an SVG from
# a Google font host, and nothing may leave the machine.
st.set_page_config(page_title="Model Catalog", page_icon=str(config.PROJECT_DIR / "assets" / "icon.png"),
                   layout="wide")

# One supervisor per data root runs queued jobs whether or not a browser is open; a read-only
# data root can only be browsed, so nothing runs there.
read_only = db.read_only_root()
if not read_only:
    ensure_running()

PAGES = {
    "Models": [
        st.Page("pages/browse.py", title="Catalog", icon=":material/inventory_2:", default=True),
        st.Page("pages/model.py", title="Model", icon=":material/search:", url_path="model"),
        st.Page("pages/import_model.py", title="Import", icon=":material/download:", url_path="import"),
    ],
    "Work": [
        st.Page("pages/convert.py", title="Convert", icon=":material/build:", url_path="convert"),
        st.Page("pages/benchmarks.py", title="Benchmarks", icon=":material/bar_chart:", url_path="benchmarks"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/settings:", url_path="jobs"),
    ],
    "Admin": [
        st.Page("pages/storage.py", title="Storage", icon=":material/storage:", url_path="storage"),
        st.Page("pages/team.py", title="Team", icon=":material/group:", url_path="team"),
        st.Page("pages/audit.py", title="Audit", icon=":material/history:", url_path="audit"),
    ],
}

page = st.navigation(PAGES)
# Before the page runs: a page that stops early (st.stop) must not lose the sidebar.
st.sidebar.caption(f"Data root: `{config.data_root()}`")
if read_only:
    st.sidebar.warning(db.read_only_sentence())
# Who is here, decided on the server before any page runs: a sign-in form or a refusal stops here.
actor = current_actor()
if config.load_settings().auth != "off":
    st.sidebar.caption(f"Signed in as {fmt.escape_md(actor.name)} ({actor.role}). "
                       + ROLE_SUMMARY.get(actor.role, "The catalog does not know this role, so it refuses every "
                                                      "change; ask an admin to set your role."))
    if config.load_settings().auth in ("local", "oidc") and st.sidebar.button("Sign out", key="sign_out"):
        sign_out()  # the cookie is cleared by this run's page, so no rerun here
        st.info("Signed out.")
        st.stop()
page.run()
