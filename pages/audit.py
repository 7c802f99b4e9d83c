"""Audit: every change to the catalog, who made it and when; admins only; filter and export CSV."""

from __future__ import annotations

import streamlit as st

from catalog import audit
from catalog.access import require
from catalog.errors import CatalogError
from ui import cached, fmt
from ui.session import current_actor

st.title("Audit")
actor = current_actor()
try:
    require(actor, "manage_users")  # the log names who did what: admins only
except CatalogError as exc:
    st.error(str(exc))
    st.stop()

st.caption("One row per change (imports, conversions, benchmarks, deletes, notes and tags, comparisons, settings, "
           "users), written in the same transaction as the change. Nothing here can be edited or deleted.")
actions, actors = cached.audit_choices()
c1, c2, c3 = st.columns(3)
who = c1.selectbox("Who", ["", *actors], format_func=lambda a: a or "anyone", key="au_who")
what = c2.selectbox("Action", ["", *actions], format_func=lambda a: a or "any action", key="au_what")
text = c3.text_input("Object id or detail contains", key="au_text")
found = audit.entries(actor=who, action=what, search=text)
st.download_button("Export CSV", audit.as_csv(found), file_name="audit.csv", mime="text/csv", key="au_csv",
                   on_click="ignore")
if not found:
    st.info("No change matches.")
    st.stop()
st.dataframe([{"when": fmt.when(e.happened_at), "who": e.actor, "action": e.action, "object": e.object_id or "",
               "detail": ", ".join(f"{k}: {v}" for k, v in e.detail.items())} for e in found],
             hide_index=True, width="stretch")
