"""The source picker the work pages share: preselected from the URL, and stops the page with
a pointer to Import when the catalog is empty."""

from __future__ import annotations

import streamlit as st

from catalog import sources
from catalog.errors import CatalogError
from ui import cached, nav

LISTED = 500


def source_picker(key: str) -> str:
    """A selectbox over the sources by name; `?source=` in the URL preselects one (even one beyond
    the first LISTED names, so a shared link always opens what was shared)."""
    listed, _ = cached.list_sources(limit=LISTED, sort="name")
    if not listed:
        st.info("Import a model first.")
        nav.link("import", "Open Import")
        st.stop()
    wanted = st.query_params.get("source")
    if wanted and wanted not in {s.id for s in listed}:
        try:
            listed = [sources.get_source(wanted), *listed]
        except CatalogError as exc:
            st.error(str(exc))
    names = {s.id: s.name for s in listed}
    ids = list(names)
    return st.selectbox("Source model", ids, index=ids.index(wanted) if wanted in ids else 0,
                        format_func=names.get, key=key)
