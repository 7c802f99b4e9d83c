"""Catalog: every source model with its variants; search, filter, sort."""

from __future__ import annotations

import streamlit as st

from backends.importers import ImportRequest
from catalog import sources
from catalog.errors import CatalogError
from service import actions
from ui import cached, fmt, nav
from ui.session import current_actor, gate

st.title("Model Catalog")
st.caption("Every source model your team keeps, with the variants derived from it.")

PAGE_SIZE = 20  # cards drawn per page: 50 took Chromium about 0.3 s more than 20 at each navigation
WATCH_EMPTY_S = 2.0  # how often an empty catalog looks for its first model (a few stat calls)


@st.fragment(run_every=WATCH_EMPTY_S)
def first_model_arrives() -> None:
    """Redraw the whole page once an import (the demo's, another user's) lands: nothing else
    reruns it, so it said "The catalog is empty." after the demo import until a reload."""
    if cached.count_sources() > 0:
        st.rerun(scope="app")


if cached.count_sources() == 0:
    st.info("The catalog is empty. Import the embedded demo model (SmolLM2-135M-Instruct, Q4_1 GGUF) "
            "to try everything without a download, or use the Import page.")
    if st.button("Import the demo model", type="primary", key="import_demo", **gate("import")):
        try:
            sub = actions.import_model(current_actor(), ImportRequest(kind="demo"))
            st.success(sub.message + " Follow it on the Jobs page; it takes a few seconds.")
        except CatalogError as exc:
            st.error(str(exc))
    nav.link("jobs", "Open Jobs", icon=":material/settings:")
    first_model_arrives()
    st.stop()

facets = cached.facets()
c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
search = c1.text_input("Search", placeholder="name, repo or notes", key="search")
arch = c2.selectbox("Architecture", ["(any)"] + facets["architecture"], key="arch")
task = c3.selectbox("Task", ["(any)"] + facets["task"], key="task")
tag = c4.selectbox("Tag", ["(any)"] + facets["tag"], key="tag")
sort = c5.selectbox("Sort", list(sources.SORTS), key="sort")
page = st.session_state.get("catalog_page", 0)

rows, total = cached.list_sources(
    search=search, architecture=None if arch == "(any)" else arch,
    task=None if task == "(any)" else task, tag=None if tag == "(any)" else tag,
    sort=sort, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
counts = cached.variant_counts([s.id for s in rows])
st.caption(f"{total} source model(s)" + (f", showing {page * PAGE_SIZE + 1}–{page * PAGE_SIZE + len(rows)}"
                                         if total > PAGE_SIZE else ""))

for src in rows:
    with st.container(border=True):
        left, right = st.columns([5, 1])
        left.markdown(f"**{fmt.escape_md(src.name)}** · {src.architecture or 'unknown architecture'} · "
                      f"{src.task or 'unknown task'} · {fmt.count(src.param_count)} parameters")
        left.caption(f"{src.origin_kind}: {fmt.escape_md(src.origin_ref or '–')} · added {fmt.when(src.added_at)}"
                     + (f" by {fmt.escape_md(src.added_by)}" if src.added_by else "")
                     + (" · tags: " + fmt.escape_md(", ".join(src.tags)) if src.tags else ""))
        right.metric("variants", counts.get(src.id, 0), label_visibility="visible")
        nav.link("model", "Open", icon=":material/search:", container=right, id=src.id)

if total > PAGE_SIZE:
    prev, _, nxt = st.columns([1, 4, 1])
    if prev.button("← Previous", disabled=page == 0):
        st.session_state.catalog_page = page - 1
        st.rerun()
    if nxt.button("Next →", disabled=(page + 1) * PAGE_SIZE >= total):
        st.session_state.catalog_page = page + 1
        st.rerun()
