"""Benchmarks: run variants on one protocol and compare them with the source as baseline."""

from __future__ import annotations

from typing import Any

import streamlit as st

from backends import registry
from bench.baseline import BASELINE_ADDED, benchmark_formats, benchmark_set, reference_variant
from bench.charts import comparison_figure, metrics_for, rows_from_results
from bench.protocol import PROFILES
from catalog import results, sources, variants
from catalog.errors import CatalogError
from service import actions
from ui.forms import option_widget
from ui.other_machines import other_machines_section
from ui.pickers import source_picker
from ui.plots import plotly_chart
from ui.session import current_actor, gate
from ui.try_encoder_classifier import try_encoder_classifier_input
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS

st.title("Benchmarks")
st.caption("Speed, memory and quality on one protocol, the source's safetensors form (FP32 in transformers or "
           "PyTorch) as the baseline. The view's selection lives in the URL: copy it to share the chart.")



def runtime_option_inputs() -> dict[str, Any]:
    """One input per benchmark option the encoder/classifier runners declare (e.g. "OpenVINO
    performance hint"); each applies to its own format's variants only."""
    return {opt.name: option_widget(opt, f"bm_option_{fmt.name}",
                                    label=f"{fmt.runtime} {opt.name.replace('_', ' ')}")
            for fmt, opt in registry.runtime_options(encoder_classifier=True)}


qp = st.query_params
source_id = source_picker("bm_source")
profile = st.radio("Profile", list(PROFILES), horizontal=True, key="bm_profile",
                   index=list(PROFILES).index(qp.get("profile", "quick")) if qp.get("profile") in PROFILES else 0,
                   help="quick: for tests and CI; full: the numbers to trust (more tokens, 5 repetitions).")
task = sources.get_source(source_id).task
is_llm = task not in ENCODER_CLASSIFIER_TASKS
family = variants.variants_of_source(source_id, include_deleted=False)
runnable = {v.id: v for v in family if v.state == "available" and v.format in benchmark_formats(task)}
labels = {vid: f"{v.label} · {vid}" for vid, v in runnable.items()}
baseline = reference_variant(source_id, family)
found_all = results.latest_results(source_id, profile, with_raw=True)
found = [r for r in found_all if results.IMPORTED_FLAG not in r.flags]  # this machine's; the others' below


def run_form() -> None:
    """Pick variants (and the runners' options) and queue their benchmarks, the baseline added."""
    if baseline is None:
        st.warning("This model has no Hugging Face (safetensors) form to serve as the baseline; make one on the "
                   "Convert page (GGUF → Hugging Face safetensors).")
    pick = st.multiselect("Variants", list(runnable), format_func=labels.get, key="bm_run_pick")
    chosen_options = {} if is_llm else runtime_option_inputs()
    if st.button("Run", type="primary", key="bm_run",
                 **gate("benchmark", disabled=not pick or baseline is None)):
        try:
            run = benchmark_set(pick, profile)
            if len(run) > len(pick):
                st.caption(BASELINE_ADDED)
            for sub in actions.benchmark(current_actor(), run, profile, runtime_options=chosen_options):
                st.success(sub.message)
            st.caption("Benchmarks run one at a time, with no conversion beside them. Follow them on the Jobs page.")
        except CatalogError as exc:
            st.error(str(exc))


# Drawn only while open (a rerun when it opens): closed once the model has results, its pickers still
# took Chromium 0.05-0.1 s at every visit of the page.
run_box = st.expander("Run benchmarks", expanded=not found, key="bm_run_open", on_change="rerun")
if run_box.open:
    with run_box:
        run_form()

other_machines_section(source_id, family, profile, found_all)

if not found:
    st.info(f"No {profile} results for this model yet.")
    st.stop()

present = [r.variant_id for r in found]
chosen_q = [v for v in qp.get("variants", "").split(",") if v in present]
chosen = st.multiselect("Compare", present, default=chosen_q or present, key="bm_compare",
                        format_func=lambda v: labels.get(v, v))
st.query_params.update({"source": source_id, "profile": profile, "variants": ",".join(chosen)})
shown = [r for r in found if r.variant_id in chosen]
short = variants.distinct_labels({vid: runnable[vid] for vid in present if vid in runnable})
short |= {vid: vid for vid in present if vid not in short}
fig, warnings = comparison_figure(rows_from_results(shown, short, baseline.id if baseline else None),
                                  metrics_for(task))
for w in warnings:
    st.warning(w)
plotly_chart(fig)

if is_llm:
    st.subheader("Generations on the fixed prompts")
    gens = {r.variant_id: {g["prompt"]: g["text"] for g in r.raw.get("generations", [])} for r in shown}
    prompts = list(next(iter(gens.values()), {}).keys())
    st.dataframe([{"prompt": p, **{short[v]: gens[v].get(p, "") for v in gens}} for p in prompts],
                 hide_index=True, width="stretch")
else:
    st.subheader("Held-out examples")
    st.caption("The first held-out inputs with each variant's answer: the predicted digit (label beside it), or the "
               "cosine similarity of the sentence embedding with the source's.")
    key = "variant" if task == "image-classification" else "cosine"
    examples = {r.variant_id: r.raw.get("examples", []) for r in shown}
    first = next(iter(examples.values()), [])
    st.dataframe([{"input": e["input"], **({"label": e["label"]} if "label" in e else {}),
                   **{short[v]: (examples[v][i][key] if i < len(examples[v]) else None) for v in examples}}
                  for i, e in enumerate(first)], hide_index=True, width="stretch")

c1, c2 = st.columns(2)
# Made when clicked (Streamlit calls a callable then), not at every rerun of the page.
c1.download_button("Export CSV", lambda: results.as_text(shown, "csv"), file_name=f"{source_id}-{profile}.csv",
                   key="bm_csv", on_click="ignore")
c2.download_button("Export JSON", lambda: results.as_text(shown, "json"), file_name=f"{source_id}-{profile}.json",
                   key="bm_json", on_click="ignore")

if not is_llm:
    try_encoder_classifier_input(task, [runnable[v] for v in chosen if v in runnable], baseline)
    st.stop()
st.subheader("Try a prompt")
with st.form("try"):
    vid = st.selectbox("Variant", list(runnable), format_func=labels.get, key="bm_try_variant")
    prompt = st.text_area("Prompt", "The capital of France is", key="bm_try_prompt")
    if st.form_submit_button("Generate", **gate(actions.TRY_PERMISSION, disabled=vid is None)):
        with st.spinner("Loading the model in a runner process…"):
            try:
                out = actions.try_prompt(current_actor(), vid, prompt)
            except CatalogError as exc:
                out = {"error": str(exc)}
        if "error" in out:
            st.error(out["error"])
        else:
            st.code(prompt + out["text"], language="text")
            st.caption(f"{out['runtime']}, {out['seconds']:.1f} s")
