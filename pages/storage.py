"""Storage: disk use per source, and cleanup of intermediates and orphaned files."""

from __future__ import annotations

import shutil

import plotly.express as px
import streamlit as st

from catalog import config, storage
from catalog.errors import CatalogError
from service import actions
from ui import cached, fmt
from ui.plots import plotly_chart
from ui.session import current_actor, gate

st.title("Storage")
usage = shutil.disk_usage(config.data_root())
c1, c2, c3 = st.columns(3)
c1.metric("Data root", str(config.data_root().name))
c2.metric("Free on disk", fmt.size(usage.free))
TOP = 25  # the biggest sources, the rest summed (in SQL): a chart of 10,000 bars helps no one
use = cached.disk_use(TOP)
rows = use.rows
c3.metric("Used by the catalog", fmt.size(use.total_bytes))
if rows:
    fig = px.bar([{"source": r["name"], "MB": r["bytes"] / 2**20, "kind": "variants"} for r in rows]
                 + [{"source": r["name"], "MB": r["intermediate_bytes"] / 2**20, "kind": "of which intermediate"}
                    for r in rows],
                 x="MB", y="source", color="kind", barmode="overlay", orientation="h",
                 title="Disk use per source model")
    fig.update_layout(height=160 + 40 * len(rows))
    plotly_chart(fig)
else:
    st.info("No models yet.")

st.subheader("Intermediates")
SHOWN = 200
inter, (n_inter, inter_bytes) = cached.intermediates(SHOWN)
st.caption("Variants made only as a step towards others (an F16 before quantizing). Deleting them keeps "
           "a tombstone in the lineage.")
if inter:
    if n_inter > len(inter):
        st.caption(f"The {len(inter)} biggest of {n_inter:,} ({fmt.size(inter_bytes)} in all).")
    st.dataframe([{"variant": r["id"], "format": r["format"], "precision": r["precision"],
                   "size": fmt.size(r["size_bytes"])} for r in inter], hide_index=True)
    if st.button(f"Delete {n_inter} intermediate(s)", key="clean_inter", **gate("delete")):
        try:
            st.success(f"Freed {fmt.size(actions.clean_intermediates(current_actor()))}.")
        except CatalogError as exc:
            st.error(str(exc))
else:
    st.write("None.")

st.subheader("Orphans")
st.caption("Files in the data root that no variant or running job accounts for.")
if not st.toggle("Scan the data root for orphans", key="scan_orphans"):
    st.stop()
orphans = storage.find_orphans()
if orphans:
    st.dataframe([{"path": str(o.path.relative_to(config.data_root())), "size": fmt.size(o.size_bytes),
                   "why": o.reason} for o in orphans], hide_index=True)
    if st.button(f"Remove {len(orphans)} orphan(s)", key="clean_orphans", **gate("delete")):
        try:
            st.success(f"Freed {fmt.size(actions.clean_orphans(current_actor()))}.")
        except CatalogError as exc:
            st.error(str(exc))
else:
    st.write("None: every file in the data root belongs to a variant or a running job.")
