"""Convert: pick a variant and a conversion; the form comes from the backend's declarations."""

from __future__ import annotations

import streamlit as st

from backends.registry import conversions, get_format
from catalog import jobs, variants
from catalog.errors import CatalogError
from catalog.records import ACTIVE_JOB_STATES, Job
from service import actions
from ui import fmt, nav, upload_limits
from ui.forms import conversion_form
from ui.jobs_view import render_job
from ui.pickers import source_picker
from ui.session import current_actor, gate

st.title("Convert and quantize")
st.caption("Every conversion runs as a tracked job. Pre-flight checks answer before anything is queued; "
           "an identical request returns the existing variant.")

source_id = source_picker("cv_source")
available = [v for v in variants.variants_of_source(source_id) if v.state == "available"]
by_id = {v.id: v for v in available}
pre_v = st.query_params.get("variant")
variant_id = st.selectbox("Input variant", list(by_id), index=list(by_id).index(pre_v) if pre_v in by_id else 0,
                          format_func=lambda i: f"{by_id[i].label} · {fmt.size(by_id[i].size_bytes)} · {i}",
                          key="cv_variant")
variant = by_id[variant_id]

# Conversions that make models; the ones that make data (an importance matrix) run inside plans.
choices = [c for c in conversions(variant.format) if get_format(c.output_format).is_model]
# What another input of this model offers (the GenAI and OpenVINO builds start from the hf form):
# said here, or a user of the demo's GGUF never learns they exist.
elsewhere: dict[str, list[str]] = {}
for other in available:
    for c in conversions(other.format):
        if c not in choices and get_format(c.output_format).is_model:
            elsewhere.setdefault(c.title.split(" (")[0], []).append(other.label)
if elsewhere:
    st.caption("With another input variant: " + "; ".join(
        f"{title} (from {', '.join(dict.fromkeys(labels))})" for title, labels in elsewhere.items()) + ".")
if not choices:
    st.info(f"No conversion takes {variant.format} input yet.")
    st.stop()
keys = [c.key for c in choices]
pre_c = st.query_params.get("conversion")
conv = st.selectbox("Conversion", choices, format_func=lambda c: c.title, key="cv_conv",
                    index=keys.index(pre_c) if pre_c in keys else 0)
st.caption(f"{conv.help} Runs on: {conv.runs_on}.")

calibration = next((o for o in conv.options if o.name == "calibration"), None)
raw = conversion_form(conv, skip=("calibration",) if calibration else ())
upload = None  # (name, bytes): the service saves it when the conversion is submitted
if calibration:
    # A "file" option takes text lines or a NumPy array of images (read with allow_pickle=False).
    kinds = ["txt", "npy"] if calibration.type == "file" else ["txt"]
    # each conversion words what its calibration is for (llama.cpp's importance matrix, NNCF's AWQ...)
    label = calibration.upload_label or f"Calibration data (optional): {calibration.help}"
    limit_mb = upload_limits.calibration_upload_mb()
    chosen = st.file_uploader(label, type=kinds, key="cv_calib", max_upload_size=limit_mb,
                              help=upload_limits.limit_help(limit_mb, "per calibration file"))
    upload = (chosen.name, chosen.getvalue()) if chosen is not None else None
    raw["calibration"] = "shipped"

try:
    steps, problems = actions.plan_conversion(current_actor(), conv.key, variant.id, raw, calibration_upload=upload)
except CatalogError as exc:
    steps, problems = [], []
    st.error(str(exc))
for p in problems:
    (st.error if p.level == "error" else st.warning)(p.message)
if steps:
    st.markdown("**Plan**")
    for s in steps:
        state = "exists, reused" if s.existing else ("intermediate" if s.step.intermediate else "new")
        # a conversion that fans out into one job per value (its batch option) shows that value
        batch = s.conversion.batch_option
        shown = s.options.get(batch) if batch else None
        st.markdown(f"- {s.conversion.title.split(' (')[0]} · `{shown or s.options}` → "
                    f"`{s.target_variant_id}` ({state})")

blocked = not steps or any(p.level == "error" for p in problems)
if st.button("Submit", type="primary", key="cv_submit", **gate("convert", disabled=blocked)):
    try:
        subs = actions.convert(current_actor(), conv.key, variant.id, raw, calibration_upload=upload)
        for sub in subs:
            st.success(sub.message)
    except CatalogError as exc:
        st.error(str(exc))


@st.fragment(run_every=2.0)
def recent() -> None:
    rows = [j for j in jobs.list_jobs(source_id=source_id, limit=20) if j.kind == "convert"]
    running = [j for j in rows if j.state in ACTIVE_JOB_STATES]
    if running:
        st.subheader("Conversions of this model under way")
        for job in running:
            show(job)
    ended = [j for j in rows if j.state not in ACTIVE_JOB_STATES][:8]
    if ended:  # folded: a visit starts at the form, not at last week's finished work
        with st.expander(f"Finished conversions of this model ({len(ended)} most recent)"):
            for job in ended:
                show(job)


def show(job: Job) -> None:
    with st.container(border=True):
        render_job(job)
        if job.state == "succeeded" and job.target_variant_id:
            nav.link("model", "Open the variant", id=source_id, variant=job.target_variant_id)


recent()
