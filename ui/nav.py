"""Links between pages that also work when a page runs alone (AppTest of one page)."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitAPIException

PAGES = {"catalog": ("pages/browse.py", ""), "model": ("pages/model.py", "model"),
         "import": ("pages/import_model.py", "import"), "convert": ("pages/convert.py", "convert"),
         "benchmarks": ("pages/benchmarks.py", "benchmarks"), "compare": ("pages/compare.py", "compare"),
         "jobs": ("pages/jobs.py", "jobs"),
         "storage": ("pages/storage.py", "storage"), "audit": ("pages/audit.py", "audit"),
         "team": ("pages/team.py", "team")}


def url(name: str, **query: str) -> str:
    return f"/{PAGES[name][1]}" + (f"?{urlencode(query)}" if query else "")


def link(name: str, label: str, icon: str | None = None, container=None, **query: str) -> None:
    where = container or st
    try:
        where.page_link(PAGES[name][0], label=label, icon=icon, query_params=query or None)
    except StreamlitAPIException:  # the page runs outside the router: a plain link does the job
        where.markdown(f"[{label}]({url(name, **query)})")


def go(name: str, **query: str) -> None:
    """Open another page now (a clicked chart point); outside the router, offer its link."""
    try:
        st.switch_page(PAGES[name][0], query_params=query or None)
    except StreamlitAPIException:
        st.markdown(f"[Open it]({url(name, **query)})")
