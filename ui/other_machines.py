"""The Benchmarks page's "Results from other machines": make a device-run bundle, upload a device
run's result.json or an upstream tool's report, and see the imported results by machine. The
service acts (actions.device_bundle, actions.import_result); this module only renders."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from backends.registry import report_readers
from bench.compare import machine_suffix
from bench.device_bundle import bundleable
from bench.upstream_reports import REPORT_PROFILE
from catalog.errors import CatalogError
from catalog.records import Variant
from catalog.results import IMPORTED_FLAG, BenchmarkResult, latest_results
from service import actions
from ui import fmt, upload_limits
from ui.session import current_actor, gate

UPLOAD_TYPES = ["json", "jsonl", "csv", "md", "txt"]
OTHER_MACHINES_OPEN = "bm_other_machines_open"  # the expander's state


def other_machines_section(source_id: str, family: list[Variant], profile: str,
                           found: list[BenchmarkResult]) -> None:
    imported = [r for r in found if IMPORTED_FLAG in r.flags] + latest_results(source_id, REPORT_PROFILE)
    labels = {v.id: f"{v.label} · {v.id}" for v in family}
    # Drawn only while open (a rerun when it opens): its uploader and pickers took Chromium 0.1-0.15 s
    # at every visit of the Benchmarks page, open or not.
    box = st.expander(f"Results from other machines ({len(imported)})", key=OTHER_MACHINES_OPEN, on_change="rerun")
    if not box.open:
        return
    with box:
        st.caption("A teammate runs this protocol on the machine you ship to (a Mac, a Snapdragon laptop) from a "
                   "bundle that needs only the variant's runtime, then uploads its result.json here. Reports of "
                   f"{', '.join(r.tool for _, r in report_readers())} import too. Each result is labelled with its "
                   "machine and kept out of this machine's frontiers unless you include it on the Compare page.")
        _bundle(family, labels, profile)
        _upload(family, labels)
        if imported:
            st.dataframe([{"variant": labels.get(r.variant_id, r.variant_id) + machine_suffix(r),
                           "protocol": r.protocol_id, "runtime": r.runtime,
                           "decode tok/s": r.metrics.get("decode_tps_p50"),
                           "latency ms p50": r.metrics.get("latency_ms_p50"),
                           "throughput /s": r.metrics.get("throughput_per_s"),
                           "perplexity": r.metrics.get("perplexity"),
                           "quality retention": r.metrics.get("quality_retention"), "imported": fmt.when(r.created_at)}
                          for r in imported], hide_index=True, width="stretch")


def _bundle(family: list[Variant], labels: dict[str, str], profile: str) -> None:
    c1, c2 = st.columns([3, 1])
    pick = c1.multiselect("Variants to bundle", bundleable(family), format_func=labels.get, key="bm_bundle_pick")
    hashes_only = c2.checkbox("Hashes only", key="bm_bundle_hashes",
                              help="Leave the files out: the device already has them.")
    if st.button("Make device bundle", key="bm_bundle", **gate("export", disabled=not pick)):
        try:
            with st.spinner("Writing the bundle…"):
                path = actions.device_bundle(current_actor(), pick, None, profile, include_files=not hashes_only)
            st.session_state["bm_bundle_path"] = str(path)
        except CatalogError as exc:
            st.error(str(exc))
    made = st.session_state.get("bm_bundle_path")
    if made and Path(made).is_file():
        st.download_button(f"Download {Path(made).name} ({Path(made).stat().st_size / 2**20:.1f} MB)",
                           Path(made).read_bytes(), file_name=Path(made).name, key="bm_bundle_download",
                           on_click="ignore")


def _upload(family: list[Variant], labels: dict[str, str]) -> None:
    c1, c2 = st.columns([3, 2])
    limit_mb = upload_limits.model_upload_mb()
    upload = c1.file_uploader("Upload a device result or a benchmark report", type=UPLOAD_TYPES, key="bm_upload",
                              max_upload_size=limit_mb, help=upload_limits.limit_help(limit_mb, "per file"))
    variant = c2.selectbox("Variant (reports that do not name their file)", [None, *[v.id for v in family]],
                           format_func=lambda v: "matched by the report's file" if v is None else labels.get(v, v),
                           key="bm_upload_variant")
    if st.button("Import result", key="bm_import", **gate(actions.IMPORT_RESULT_PERMISSION, disabled=upload is None)):
        try:
            ids = actions.import_result(current_actor(), upload.name, upload.getvalue(), variant)
            st.success(f"Imported {len(ids)} result(s): {', '.join(ids)}.")
        except CatalogError as exc:
            st.error(str(exc))
