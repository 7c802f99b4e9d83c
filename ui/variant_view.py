"""What a conversion learnt about a variant: effective types, a toolkit's breakdown (e.g. node
placement), the toolkit's own record of its run, and smoke-test generations."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from catalog.records import Variant
from ui.plots import plotly_chart

ROW_PX, FRAME_PX = 40, 150  # a bar per type, plus the title, the axis and its labels


def effective_types_figure(hist: dict[str, dict[str, float]], requested: str | None) -> go.Figure:
    """One bar per stored tensor type, its share of the weights. The height leaves every bar its
    row: at 80 + 40 px a row, Plotly's default margins left no plot area and a Q8_0 file (99.97 %
    Q8_0, 0.03 % F32) showed a single "F32" label against an axis running to 100 %. Shares print
    to two decimals, so a small type does not read as 0 % and a large one as all of it. Built as
    one dict (plotly express took 0.11 s of the Model page's script at every visit)."""
    types = list(hist)
    bars = {"type": "bar", "orientation": "h", "x": [hist[t]["share"] for t in types], "y": types,
            "customdata": [[hist[t]["tensors"]] for t in types], "showlegend": False,
            "hovertemplate": "share of weights=%{x}<br>type=%{y}<br>tensors=%{customdata[0]}<extra></extra>",
            "texttemplate": "%{x:.2%}", "textposition": "outside", "cliponaxis": False}
    return go.Figure({"data": [bars], "layout": {
        "title": {"text": f"Effective tensor types (requested {requested})"},
        "height": FRAME_PX + ROW_PX * len(types), "margin": {"t": 50, "b": 45, "r": 10},
        "xaxis": {"title": {"text": "share of weights"}, "tickformat": ".0%", "range": [0, 1.12]},
        "yaxis": {"categoryorder": "total ascending", "title": {"text": ""}}}})


def effective_types_chart(variant: Variant) -> None:
    hist = variant.metadata.get("effective_types")
    if not hist:
        return
    plotly_chart(effective_types_figure(hist, variant.precision))
    if variant.precision not in hist:
        st.caption(f"No tensor came out as {variant.precision}: llama.cpp fell back per tensor where a row "
                   "does not divide the type's block size.")


def breakdown_chart(variant: Variant) -> None:
    """A toolkit's per-category breakdown of a variant, as a stacked bar chart and a table (e.g.
    which nodes of each op type run on which device). metadata["breakdown"]: {"title",
    "category" (the rows' label column), "rows" [{category: ..., part: count, ...}], optional
    "caption" and "details" (rows of a second table)}."""
    data = variant.metadata.get("breakdown")
    if not data or not data.get("rows"):
        return
    category, rows = data["category"], data["rows"]
    parts = [k for k in rows[0] if k != category]
    long = [{category: r[category], "part": p, "count": r[p]} for r in rows for p in parts]
    fig = px.bar(long, x="count", y=category, color="part", orientation="h", title=data.get("title", ""))
    fig.update_layout(height=120 + 28 * len(rows), yaxis={"categoryorder": "total ascending"})
    plotly_chart(fig)
    st.dataframe(rows, hide_index=True, width="stretch")
    if data.get("caption"):
        st.caption(data["caption"])
    if data.get("details"):
        st.dataframe(data["details"], hide_index=True, width="stretch")


def tool_record(variant: Variant) -> None:
    """The converting toolkit's own account of its run, kept with the variant (e.g. a workflow
    tool's pass-by-pass history). metadata["tool_record"]: {"title", "rows" [{column: value}],
    optional "caption" and "text" (the tool's own table or log, shown as it wrote it)}."""
    record = variant.metadata.get("tool_record")
    if not record:
        return
    st.subheader(record.get("title", "The toolkit's record"))
    if record.get("rows"):
        st.dataframe(record["rows"], hide_index=True, width="stretch")
    if record.get("caption"):
        st.caption(record["caption"])
    if record.get("text"):
        with st.expander("As the toolkit wrote it"):
            st.code(record["text"], language="text")


def smoke_results(variant: Variant) -> None:
    smoke = variant.metadata.get("smoke")
    if not smoke:
        return
    if "score" in smoke:  # an encoder or classifier: agreement or cosine over held-out inputs
        gate_line(smoke["score"] >= smoke["min_score"],
                  f"{smoke['metric']} with the parent ≥ {smoke['min_score']} over {smoke['samples']} held-out inputs")
        c1, c2 = st.columns(2)
        c1.metric(f"{smoke['metric'].capitalize()} with parent", f"{smoke['score']:.4f}")
        c2.metric("Max abs error vs parent", f"{smoke['max_abs_error']:.4g}")
        return
    gate_line(smoke["top1_agreement"] >= smoke["min_agreement"],
              f"top-1 agreement with the parent ≥ {smoke['min_agreement']:.0%} over {smoke['positions']} positions")
    c1, c2 = st.columns(2)
    c1.metric("Top-1 agreement with parent", f"{smoke['top1_agreement']:.1%}")
    c2.metric("Identical greedy continuations", f"{smoke['identical_continuations']} / {len(smoke['generations'])}")
    st.dataframe([{"prompt": g["prompt"], "parent": g["parent"], "this variant": g["variant"]}
                  for g in smoke["generations"]], hide_index=True, width="stretch")


def gate_line(passed: bool, rule: str) -> None:
    """The smoke gate on the page, not in a tooltip: the rule the job applied and its outcome."""
    if passed:
        st.success(f"Smoke gate passed: {rule}.", icon="✅")
    else:
        st.error(f"Smoke gate failed: {rule}. This variant is not published.", icon="❌")
