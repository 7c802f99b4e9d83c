"""Compare: which variant to ship. Trade-off scatters with Pareto frontiers, the chapter's
headline table and quality gates, "best that passes", saved comparisons with stable links
(`/compare?c=<id>`), and exports (HTML, PNG, CSV, JSON)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st
from streamlit import config as st_config

from bench import compare
from bench.compare_export import (
    PngUnavailable,
    baseline_sentence,
    best_sentence,
    export_figures,
    file_stem,
    gates_sentence,
    to_csv,
    to_html,
    to_json,
    to_png,
)
from bench.compare_view import (
    BUBBLES,
    COLOR_BY,
    CompareSpec,
    ComparisonView,
    build_view,
    candidate_results,
    clicked_link,
    default_baseline,
    result_label,
    updated_result_ids,
    variant_labels,
)
from bench.protocol import PROFILES
from catalog import comparisons, config, db, results, sources
from catalog.comparisons import Comparison, SameNameError, comparison_link
from catalog.errors import CatalogError
from catalog.speed_caveats import caveats_sentence
from service import actions
from ui import cached, fmt, nav
from ui.pickers import source_picker
from ui.plots import plotly_chart
from ui.session import current_actor, gate
from ui.share_link import full_link, local_only_note

MAX_SOURCES = 200  # sources of the same task offered beside the first
SAVED_SHOWN = 25
# session keys: the name a save found taken (asked about), the sentence of the save just made
# (shown after the rerun that opens it), the comparison whose delete awaits its confirmation
PENDING_SAVE, JUST_SAVED, CONFIRM_DELETE = "cmp_pending_same_name", "cmp_just_saved", "cmp_confirm_delete"
SAVED_OPEN = "cmp_saved_open"  # the Saved comparisons expander's state

st.title("Compare")
st.caption("Which variant to ship: every variant against one baseline result, the chapter's gates "
           "(quality kept, speed-up, memory saved), and the trade-off frontiers. Save a comparison for a "
           "stable link: it keeps the results it shows, whatever runs later.")
actor = current_actor()
qp = st.query_params


def saved_comparison() -> Comparison | None:
    if not qp.get("c"):
        return None
    try:
        return comparisons.get_comparison(qp["c"])
    except CatalogError as exc:
        st.error(str(exc))
        return None


def pick_spec() -> CompareSpec | None:
    """A new comparison: sources of one task, a profile, the results to show, and a baseline; its
    reads share one catalog connection (each opened its own: 8 ms apiece on a 5 GB catalog)."""
    with db.connect(write=False):
        return _pick_spec()


def _pick_spec() -> CompareSpec | None:
    source_id = source_picker("cmp_source")
    task = sources.get_source(source_id).task
    profile = st.radio("Profile", list(PROFILES), horizontal=True, key="cmp_profile",
                       index=list(PROFILES).index(qp["profile"]) if qp.get("profile") in PROFILES else 0)
    names = {s.id: s.name for s in cached.list_sources(task=task, limit=MAX_SOURCES)[0] if s.id != source_id}
    others = st.multiselect("Also compare variants of", results.sources_with_results(list(names), profile),
                            format_func=lambda s: names.get(s, s), key="cmp_others",
                            help="Other source models of the same task, for instance a larger model's "
                                 "quantizations against this one's.")
    found = candidate_results([source_id, *others], profile)
    if not found:
        st.info(f"No {profile} results for this model yet: run benchmarks first.")
        nav.link("benchmarks", "Open Benchmarks", source=source_id)
        return None
    labels = variant_labels([r.variant_id for r in found])
    by_id = {r.id: r for r in found}
    wanted = [r for r in qp.get("results", "").split(",") if r in by_id]
    chosen = st.multiselect(
        "Results", list(by_id), default=wanted or list(by_id), key="cmp_results",
        format_func=lambda rid: f"{result_label(by_id[rid], labels)} · {fmt.when(by_id[rid].created_at)}")
    default_base = default_baseline(found, source_id)
    base = st.selectbox("Baseline", list(by_id), index=list(by_id).index(default_base), key="cmp_baseline",
                        format_func=lambda rid: result_label(by_id[rid], labels),
                        help="By default the source's reference run (its Hugging Face form in PyTorch).")
    return CompareSpec(result_ids=[r for r in chosen if r != base], baseline_result_id=base,
                       gates=dict(config.load_settings().compare_gates))


def tune(spec: CompareSpec, key: str) -> CompareSpec:
    """Gates, weights and chart choices; start from the spec, so a link opens as it was saved, or
    from what the user chose last in this session. The expander is drawn only while open (its nine
    inputs cost Chromium time at every visit): its widgets forget their values while not drawn, so
    the choices are kept in the session beside them and are the widgets' start when it reopens."""
    kept = f"{key}_tuned"
    if kept in st.session_state:
        spec = replace(spec, **st.session_state[kept])
    box = st.expander("Gates, weights and chart options", key=f"{key}_tune_open", on_change="rerun")
    if not box.open:
        return spec
    with box:
        st.caption("Team defaults come from the data root's config.json (compare_gates); these override them "
                   "for this comparison.")
        g1, g2, g3 = st.columns(3)
        gates = {
            "quality_retention": g1.number_input("Quality retention ≥ %", 0.0, 200.0,
                                                 100 * spec.gates.get("quality_retention", 0.95), 1.0,
                                                 key=f"{key}_gq") / 100,
            "speedup": g2.number_input("Speed-up ≥ ×", 0.0, 100.0, spec.gates.get("speedup", 2.0), 0.1,
                                       key=f"{key}_gs"),
            "memory_reduction": g3.number_input("Memory reduction ≥ %", -100.0, 100.0,
                                                100 * spec.gates.get("memory_reduction", 0.5), 5.0,
                                                key=f"{key}_gm") / 100,
        }
        w1, w2, w3 = st.columns(3)
        weights = {"speedup": w1.slider("Weight: speed", 0.0, 3.0, spec.weights.get("speedup", 1.0), 0.5,
                                        key=f"{key}_ws"),
                   "quality_retention": w2.slider("Weight: quality", 0.0, 3.0,
                                                  spec.weights.get("quality_retention", 1.0), 0.5, key=f"{key}_wq"),
                   "memory_reduction": w3.slider("Weight: memory", 0.0, 3.0,
                                                 spec.weights.get("memory_reduction", 1.0), 0.5, key=f"{key}_wm")}
        c1, c2, c3 = st.columns(3)
        bubble = c1.radio("Bubble size", list(BUBBLES), index=list(BUBBLES).index(spec.bubble), horizontal=True,
                          key=f"{key}_bubble")
        color_by = c2.radio("Colour by", list(COLOR_BY), index=list(COLOR_BY).index(spec.color_by),
                            horizontal=True, key=f"{key}_color")
        include = c3.checkbox("Include results unlike the baseline", spec.include_unlike, key=f"{key}_unlike",
                              help="Other protocol, machine, simulated device or imported results: kept out of "
                                   "the frontiers and the gates unless ticked.")
    st.session_state[kept] = {"gates": gates, "weights": weights, "include_unlike": include, "bubble": bubble,
                              "color_by": color_by}
    return replace(spec, **st.session_state[kept])


def show_chart(fig, key: str) -> None:
    """A chart whose points open their Model page when clicked."""
    event = plotly_chart(fig, key=key, on_select="rerun", selection_mode="points")
    picked = event.selection.points if event and event.selection else []
    link = clicked_link(picked[0].get("customdata")) if picked else None
    if link:
        nav.go(link[0], **link[1])


def show(view: ComparisonView, key: str) -> None:
    unlike = [p for p in view.points if p.unlike]
    for p in unlike:
        st.warning(f"{p.label} is not comparable with the baseline ({', '.join(p.unlike)}): "
                   + ("included by your choice." if view.spec.include_unlike else "drawn hollow, kept out of the "
                      "frontiers and the gates."))
    if view.missing:
        st.warning(f"{len(view.missing)} result(s) of this comparison are no longer stored (their variant was "
                   "deleted); the rest is shown.")
    st.markdown(fmt.escape_md(baseline_sentence(view)))
    (st.success if view.best else st.warning)(best_sentence(view))
    if caveats := caveats_sentence(view.speed_caveats()):
        st.warning(caveats, icon=":material/speed:")
    st.caption(compare.SCORE_DEFINITION + f" Gates: {gates_sentence(view)}.")
    figures = view.figures()
    c1, c2 = st.columns(2)
    with c1:
        show_chart(figures["quality-vs-speed"], f"{key}_speed")
    with c2:
        show_chart(figures["size-vs-quality"], f"{key}_size")
    st.subheader("Against the baseline")
    st.dataframe(view.headline_rows(), hide_index=True, width="stretch", column_config=headline_columns(view))
    # Drawn only while open (a rerun when it opens): the Benchmarks page's grouped bars, ten panels,
    # were 0.15-0.25 s of every visit at 10x scale (Compare ?source 0.52-0.71 s in-app -> 0.40-0.51 s).
    box = st.expander("Every metric", key=f"{key}_bars_open", on_change="rerun")
    if box.open:
        plotly_chart(figures["metrics"], container=box, key=f"{key}_bars")


def headline_columns(view: ComparisonView) -> dict[str, Any]:
    """The headline table's headings in words (its CSV keeps the stable keys): the ids and the
    format (the variant's label starts with it) left out, so it fits without scrolling sideways."""
    gates = {f"gate: {g.metric}": st.column_config.TextColumn(f"gate: {compare.METRIC_NAMES.get(g.metric, g.metric)}")
             for g in view.gates}
    return {"variant_id": None, "result_id": None, "format": None,
            "speed repetitions": st.column_config.NumberColumn("speed runs"), **gates}


def share(view: ComparisonView, saved: Comparison | None) -> None:
    st.subheader("Share")
    name = saved.name if saved else "comparison"
    stem = file_stem(name)  # the names `cli.py comparisons export` writes
    c1, c2, c3 = st.columns(3)
    link = comparison_link(saved.id) if saved else ""
    # Made when clicked (Streamlit runs a callable then): a 5 MB page is not built on every rerun.
    # on_click="ignore": a click does not rerun the page, which would drop the files of the buttons
    # not yet clicked (four clicks 0.6 s apart gave three files and "MediaFileStorageError").
    c1.download_button("Interactive HTML (offline)", lambda: to_html(view, name, link), file_name=f"{stem}.html",
                       mime="text/html", key="cmp_html", on_click="ignore")
    c2.download_button("CSV with provenance", lambda: to_csv(view), file_name=f"{stem}.csv", mime="text/csv",
                       key="cmp_csv", on_click="ignore")
    c3.download_button("JSON with provenance", lambda: to_json(view, name), file_name=f"{stem}.json",
                       mime="application/json", key="cmp_json", on_click="ignore")
    if st.button("Render PNGs of the charts", key="cmp_png"):
        with st.spinner("Drawing each chart in Chromium…"):
            try:
                st.session_state["cmp_pngs"] = {n: to_png(f) for n, f in export_figures(view, name).items()}
            except PngUnavailable as exc:
                st.error(str(exc))
    for n, png in st.session_state.get("cmp_pngs", {}).items():
        st.download_button(f"PNG: {n}", png, file_name=f"{stem}-{n}.png", mime="image/png", key=f"cmp_png_{n}",
                           on_click="ignore")
    save_form(view, saved)


def _save(view: ComparisonView, name: str, same_name_ok: bool = False) -> None:
    """One save, then the page opens what was saved (a rerun): a second submit of the form (Enter
    in Name, then the button) meets the same name and is asked about, not saved again."""
    try:
        made = actions.save_comparison(actor, name, view.spec.to_dict(), same_name_ok=same_name_ok)
    except SameNameError as exc:
        st.session_state[PENDING_SAVE] = name
        st.warning(str(exc))
        return
    except CatalogError as exc:
        st.error(str(exc))
        return
    st.session_state.pop(PENDING_SAVE, None)
    st.session_state[JUST_SAVED] = f"Saved as “{fmt.escape_md(made.name)}”: its link is {comparison_link(made.id)}"
    st.query_params.clear()
    st.query_params["c"] = made.id
    st.rerun()


def save_form(view: ComparisonView, saved: Comparison | None) -> None:
    if JUST_SAVED in st.session_state:
        st.success(st.session_state.pop(JUST_SAVED))
    with st.form("cmp_save"):
        new_name = st.text_input("Name", value=f"{saved.name} (copy)" if saved else "", key="cmp_name")
        submitted = st.form_submit_button("Save comparison", **gate("save_comparison"))
    if submitted:
        _save(view, new_name)
    pending = st.session_state.get(PENDING_SAVE)
    if pending and pending == " ".join(new_name.split()):  # asked while the name is unchanged
        if not submitted:
            st.caption(f"A comparison named “{fmt.escape_md(pending)}” exists already; rename it above, or:")
        if st.button("Save another with the same name", key="cmp_save_same", **gate("save_comparison")):
            _save(view, pending, same_name_ok=True)


def offer_update(view: ComparisonView, saved: Comparison) -> None:
    newer = results.newer_results(view.results)
    if not newer:
        return
    names = ", ".join(p.label for p in view.points if p.variant_id in newer)
    st.info(f"Newer results exist for {names}. This comparison still shows the results it was saved with.")
    if not actions.may_update_comparison(actor, saved):
        st.caption(f"Only {fmt.escape_md(saved.created_by)} can update it; save a copy below to compare the newer "
                   "results.")
    elif st.button("Update to the newest results", key="cmp_update", **gate("save_comparison")):
        actions.update_comparison(actor, saved.id, updated_result_ids(view, newer))
        st.rerun()


def saved_list() -> None:
    # Drawn only while open (a rerun when it opens): 25 rows with their buttons took Chromium
    # 0.2-0.35 s at every visit of the page, open or not.
    box = st.expander("Saved comparisons", key=SAVED_OPEN, on_change="rerun")
    if not box.open:
        return
    with box:
        search = st.text_input("Search by name or author", key="cmp_search")
        found = comparisons.list_comparisons(search, limit=SAVED_SHOWN + 1)
        if len(found) > SAVED_SHOWN:
            st.caption(f"The {SAVED_SHOWN} most recently saved; search to find others.")
        for c in found[:SAVED_SHOWN]:
            a, b = st.columns([5, 1])
            a.markdown(f"[{fmt.escape_md(c.name)}]({comparison_link(c.id)}) · {fmt.escape_md(c.created_by)} · "
                       f"{fmt.when(c.updated_at)} · {len(c.shown_ids)} results, baseline included")
            if actions.may_delete_comparison(actor, c) and b.button("Delete", key=f"cmp_del_{c.id}"):
                st.session_state[CONFIRM_DELETE] = c.id
            if st.session_state.get(CONFIRM_DELETE) == c.id:
                confirm_delete(c)


def confirm_delete(c: Comparison) -> None:
    """A shared comparison is deleted only after a second, explicit click: its link stops working
    for everyone who has it."""
    st.warning(f"Delete “{fmt.escape_md(c.name)}”, saved by {fmt.escape_md(c.created_by)}? Its link stops working "
               "for everyone it was shared with.")
    yes, no = st.columns(2)
    if yes.button("Delete it for everyone", key=f"cmp_del_yes_{c.id}", type="primary"):
        st.session_state.pop(CONFIRM_DELETE, None)
        try:
            actions.delete_comparison(actor, c.id)
        except CatalogError as exc:
            st.error(str(exc))
            return
        st.rerun()
    if no.button("Keep it", key=f"cmp_del_no_{c.id}"):
        st.session_state.pop(CONFIRM_DELETE, None)
        st.rerun()


saved = saved_comparison()
if saved:
    st.subheader(fmt.escape_md(saved.name))
    st.caption(f"Saved by {fmt.escape_md(saved.created_by)}, {fmt.when(saved.created_at)} · link to share (its copy "
               "button shows on hover):")
    st.code(full_link(comparison_link(saved.id), st.context.url), language=None)
    if note := local_only_note(st.context.url, st_config.get_option("server.address")):
        st.caption(note)
    nav.link("compare", "Start a new comparison")
    spec = CompareSpec.from_dict(saved.spec)
else:
    spec = pick_spec()
if spec is not None:
    spec = tune(spec, f"cmp_{saved.id if saved else 'new'}")
    try:
        view = build_view(spec)
    except CatalogError as exc:
        st.error(str(exc))
    else:
        if saved:
            offer_update(view, saved)
        show(view, "cmp")
        share(view, saved)
saved_list()
