"""Plotly charts of benchmark results, drawn on the Benchmarks page.

Results are only put side by side when their protocol and fingerprint match the baseline's;
a result that differs is drawn hatched and named in a warning, never silently compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from bench.fingerprint import device_class, fingerprint_id
from catalog.results import BUSY_FLAG, NONFINITE_FLAG, UNSTEADY_FLAG

# (metric key, title, std key for error bars or None)
METRICS: list[tuple[str, str, str | None]] = [
    ("decode_tps_p50", "Decode tokens/s, median ↑", "decode_tps_std"),
    ("prefill_tps_p50", "Prefill tokens/s, median ↑", "prefill_tps_std"),
    ("ttft_s", "Time to first token, s ↓", None),
    ("load_s", "Load time, s ↓", None),
    ("size_mb", "Size on disk, MB ↓", None),
    ("memory_rise_mb", "Memory rise over runtime, MB ↓", None),
    ("perplexity", "Perplexity, source token ids (cross-runtime) ↓", None),
    ("llamacpp_perplexity", "Perplexity, llama.cpp-compatible (own tokenizer, c=512) ↓", None),
    ("top1_agreement", "Top-1 agreement with source ↑", None),
    ("kl_mean", "KL divergence from source ↓", None),
    ("quality_retention", "Quality retention (source ppl / ppl) ↑", None),
]
# Encoders and image classifiers (latency of one batch; quality over held-out inputs).
TENSOR_METRICS: list[tuple[str, str, str | None]] = [
    ("latency_ms_p50", "Latency per batch, p50, ms ↓", None),
    ("latency_ms_p90", "Latency per batch, p90, ms ↓", None),
    ("throughput_per_s", "Throughput, inputs/s ↑", None),
    ("size_mb", "Size on disk, MB ↓", None),
    ("memory_rise_mb", "Memory rise over runtime, MB ↓", None),
    ("load_s", "Load time, s ↓", None),
    ("accuracy", "Accuracy on held-out labels ↑", None),
    ("top1_agreement", "Top-1 agreement with source ↑", None),
    ("cosine_mean", "Cosine similarity with source, mean ↑", None),
    ("cosine_min", "Cosine similarity with source, min ↑", None),
    ("max_abs_error", "Max abs error vs source ↓", None),
]


def metrics_for(task: str | None) -> list[tuple[str, str, str | None]]:
    from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS

    return TENSOR_METRICS if task in ENCODER_CLASSIFIER_TASKS else METRICS
BASELINE_COLOR, VARIANT_COLOR, MISMATCH_COLOR = "#7f7f7f", "#1f77b4", "#d62728"
# Ratios near 1 where a zero-based axis hides the differences that matter.
ZOOMED_METRICS = {"top1_agreement", "accuracy", "cosine_mean", "cosine_min", "quality_retention"}
# Figures a result with NaN or infinite outputs cannot have: drawn as failed, never as a value.
QUALITY_METRICS = ZOOMED_METRICS | {"perplexity", "llamacpp_perplexity", "kl_mean", "max_abs_error"}


@dataclass
class ChartRow:
    label: str
    variant_id: str
    metrics: dict[str, Any]
    protocol_id: str
    fingerprint_id: str
    flags: list[str] = field(default_factory=list)
    is_baseline: bool = False
    device: str = "CPU"  # the fingerprint's device class, e.g. "QNN HTP simulator"

    @property
    def simulated(self) -> bool:
        return "simulator" in self.device.lower()


def comparability(rows: list[ChartRow]) -> tuple[set[str], list[str]]:
    """Variant ids that cannot be compared with the baseline, and a sentence for each."""
    base = next((r for r in rows if r.is_baseline), rows[0] if rows else None)
    odd: set[str] = set()
    warnings: list[str] = []
    for r in rows:
        if base is None or r is base:
            continue
        if r.device != base.device:  # said whatever else differs: a simulator's speed is no device's
            odd.add(r.variant_id)
            warnings.append(f"{r.label} ran on the {r.device}: its latency is simulated, not a device's." if r.simulated
                            else f"{r.label} ran on {r.device}, not on this machine's CPU like the baseline.")
        if r.protocol_id != base.protocol_id:
            odd.add(r.variant_id)
            warnings.append(f"{r.label} was measured with another protocol ({r.protocol_id} vs {base.protocol_id}).")
        elif r.fingerprint_id != base.fingerprint_id:
            odd.add(r.variant_id)
            warnings.append(f"{r.label} was measured on another machine or runtime setting "
                            f"({r.fingerprint_id} vs {base.fingerprint_id}); its speed is not comparable.")
    failed = [r.label for r in rows if NONFINITE_FLAG in r.flags]
    if failed:
        warnings.append(f"{', '.join(failed)} gave NaN or infinite outputs: "
                        f"{'its' if len(failed) == 1 else 'their'} quality is charted as failed, not measured.")
    busy = [r.label for r in rows if BUSY_FLAG in r.flags]
    if busy:  # one sentence for all of them: a list of identical warnings hides the ones that differ
        warnings.append(f"Measured while the machine was busy: {', '.join(busy)}; rerun "
                        f"{'it' if len(busy) == 1 else 'them'} for trustworthy speed (quality is unaffected).")
    unsteady = [f"{r.label} ({100 * r.metrics.get('decode_tps_cv', 0):.0f}%)" for r in rows if UNSTEADY_FLAG in r.flags]
    if unsteady:
        warnings.append(f"Decode speed varied between repetitions by more than 5% (CV): {', '.join(unsteady)}; "
                        "rerun on a quiet machine.")
    return odd, warnings


def zoomed_range(key: str, values: list[float]) -> list[float] | None:
    """A y range for a ratio metric whose values all sit near 1 (agreement, accuracy, cosine,
    retention), where bars from zero would all look alike; None to keep the axis from zero."""
    if key not in ZOOMED_METRICS or not values or min(values) < 0.5:
        return None
    low, high = min(values), max(max(values), 1.0)
    pad = max((high - low) * 0.15, 0.002)
    return [low - pad, high + pad / 3]


def comparison_figure(rows: list[ChartRow], metrics: list[tuple[str, str, str | None]] | None = None
                      ) -> tuple[go.Figure, list[str]]:
    """Grouped bars, one panel per metric, the baseline grey with a dashed line at its value."""
    metrics = [m for m in (metrics or METRICS) if any(m[0] in r.metrics for r in rows)]
    odd, warnings = comparability(rows)
    failed = [NONFINITE_FLAG in r.flags for r in rows]
    labels = [r.label + (" (baseline)" if r.is_baseline else "") + (" · simulated" if r.simulated else "")
              + (" ⚠" if r.variant_id in odd else "")
              + (" ✗ failed" if bad else "") for r, bad in zip(rows, failed, strict=True)]
    layout = panel_grid([m[1] for m in metrics], cols=2, label_px=label_height(labels))
    base = next((r for r in rows if r.is_baseline), None)
    colors = [BASELINE_COLOR if r.is_baseline else MISMATCH_COLOR if r.variant_id in odd else VARIANT_COLOR
              for r in rows]
    patterns = ["x" if r.variant_id in odd else "" for r in rows]
    traces: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for i, (key, _title, std_key) in enumerate(metrics):
        axis = "" if i == 0 else str(i + 1)
        values = [None if bad and key in QUALITY_METRICS else r.metrics.get(key) for r, bad in zip(rows, failed,
                                                                                                   strict=True)]
        trace = {"type": "bar", "x": labels, "y": values, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                 "marker": {"color": colors, "pattern": {"shape": patterns}}, "showlegend": False, "name": key,
                 "hovertemplate": "%{x}<br>%{y:.4g}<extra></extra>"}
        if std_key:
            trace["error_y"] = {"type": "data", "array": [r.metrics.get(std_key, 0) for r in rows]}
        traces.append(trace)
        if key in QUALITY_METRICS:
            layout["annotations"] += _failed_marks(labels, failed, axis)
        zoom = zoomed_range(key, [v for v in values if isinstance(v, int | float)])
        if zoom:
            layout[f"yaxis{axis}"] |= {"range": zoom, "title": {"text": "zoomed", "font": {"size": 10}}}
        if base is not None and base.metrics.get(key) is not None:
            lines.append({"type": "line", "xref": f"x{axis} domain", "yref": f"y{axis}", "x0": 0, "x1": 1,
                          "y0": base.metrics[key], "y1": base.metrics[key],
                          "line": {"dash": "dash", "color": BASELINE_COLOR}})
    layout |= {"shapes": lines, "bargap": 0.3}
    # One dict handed to plotly at the end: make_subplots and add_trace(row=, col=) validated every
    # property on the way (0.16 s of a 10-result page's 0.5 s server time; this way 0.03 s).
    return go.Figure({"data": traces, "layout": layout}), warnings


PANEL_PX, TITLE_PX, TOP_PX = 200, 34, 40  # a panel's plot area, its title's line, the space over the first


def panel_grid(titles: list[str], cols: int, label_px: int) -> dict[str, Any]:
    """A grid of len(titles) panels laid out in pixels, a title over each: the gap under a row
    holds its slanted variant names (label_px) and the next row's title, so neither covers the
    other at any number of rows (make_subplots' spacing is a share of the height, and it did).
    Tick labels lie flat or slant 30 degrees, never stand upright, so label_px is known without
    plotly's automargin, which redrew the whole figure once more in the browser (a 10-panel
    chart: 250 ms -> 90 ms in Chromium)."""
    n_rows = max(1, math.ceil(len(titles) / cols))
    gap_x = 0.2 / cols
    width = (1 - gap_x * (cols - 1)) / cols
    gap_px = label_px + TITLE_PX
    plot_px = n_rows * PANEL_PX + (n_rows - 1) * gap_px
    layout: dict[str, Any] = {"annotations": [], "height": TOP_PX + plot_px + label_px + 10,
                              "margin": {"t": TOP_PX, "b": label_px + 10}}
    for i, title in enumerate(titles):
        row, col = divmod(i, cols)
        axis = "" if i == 0 else str(i + 1)
        x0 = col * (width + gap_x)
        top = 1 - row * (PANEL_PX + gap_px) / plot_px
        bottom = top - PANEL_PX / plot_px
        layout[f"xaxis{axis}"] = {"anchor": f"y{axis}", "domain": [round(x0, 9), round(x0 + width, 9)],
                                  "autotickangles": [0, 30]}
        layout[f"yaxis{axis}"] = {"anchor": f"x{axis}", "domain": [round(max(0.0, bottom), 9), round(top, 9)]}
        layout["annotations"].append({"text": title, "x": round(x0 + width / 2, 9), "y": round(top, 9),
                                      "xref": "paper", "yref": "paper",
                                      "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 16}})
    return layout


def label_height(labels: list[str]) -> int:
    """Pixels the variant names take under a panel, slanted 30 degrees (12 px type: about 3.5 px
    of height per character), capped: a very long name is cut rather than the panels squeezed."""
    longest = max((len(label) for label in labels), default=0)
    return min(200, round(3.5 * longest) + 14)


def _failed_marks(labels: list[str], failed: list[bool], axis: str) -> list[dict[str, Any]]:
    """A red "failed" in place of the bar of each result with NaN or infinite outputs."""
    return [{"x": label, "y": 0.5, "xref": f"x{axis}", "yref": f"y{axis} domain", "text": "failed: NaN outputs",
             "showarrow": False, "textangle": -90, "font": {"color": MISMATCH_COLOR, "size": 11}}
            for label, bad in zip(labels, failed, strict=True) if bad]


def rows_from_results(results: list[Any], labels: dict[str, str], baseline_variant_id: str | None) -> list[ChartRow]:
    # labels by result id (two results of one variant: this machine's and a device's) or by variant id
    return [ChartRow(label=labels.get(r.id, labels.get(r.variant_id, r.variant_id)), variant_id=r.variant_id,
                     metrics=r.metrics,
                     protocol_id=r.protocol_id, flags=r.flags,
                     # recomputed, so results stored before the id's definition changed still compare
                     fingerprint_id=fingerprint_id(r.fingerprint) if r.fingerprint else r.fingerprint_id,
                     device=device_class(str((r.fingerprint or {}).get("target", ""))) or "CPU",
                     is_baseline=r.variant_id == baseline_variant_id) for r in results]


# --------------------------------------------------------------------------- trade-off scatters

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
FRONTIER_COLOR = "#444444"
UNLIKE_GROUP = "unlike the baseline"


@dataclass
class Axis:
    """One scatter axis or bubble: a title and how to read the figure off a compare Point."""

    title: str
    value: Any                      # Callable[[Point], float | None]
    higher_better: bool = True
    percent: bool = False


def tradeoff_figure(points: list[Any], x: Axis, y: Axis, size: Axis | None, color_by: str,
                    frontier: list[Any], title: str) -> go.Figure:
    """A scatter of compare Points (bench.compare.Point), one colour per format or toolkit, bubble
    size for memory or disk, the baseline as a star, points unlike the baseline hollow and grey,
    and the Pareto frontier as a dashed line. Hover shows recipe and toolkit versions; each point's
    customdata is its Model page link, for clicks."""
    sizes = _bubble_sizes(points, size)
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(UNLIKE_GROUP if p.unlike else getattr(p, color_by), []).append(i)
    colors = {g: PALETTE[k % len(PALETTE)] for k, g in enumerate(sorted(g for g in groups if g != UNLIKE_GROUP))}
    traces: list[dict[str, Any]] = []
    for group, idx in groups.items():
        pts = [points[i] for i in idx]
        odd = group == UNLIKE_GROUP
        # dict(...) keywords as go.Scatter took them: the figure is handed to plotly once, at the end
        traces.append(dict(
            type="scatter", x=[x.value(p) for p in pts], y=[y.value(p) for p in pts], mode="markers+text",
            name=group, text=[p.label + (" (baseline)" if p.is_baseline else "") for p in pts],
            textposition="top center", textfont={"size": 10},
            marker={"size": [sizes[i] for i in idx], "color": MISMATCH_COLOR if odd else colors[group],
                    "symbol": ["star" if p.is_baseline else "circle-open" if odd else "circle" for p in pts],
                    "line": {"width": 1, "color": "white"}, "opacity": 0.85},
            customdata=[f"/model?id={p.source_id}&variant={p.variant_id}" for p in pts],
            hovertext=[_hover(p, x, y, size) for p in pts], hoverinfo="text"))
    if len(frontier) > 1 or (frontier and not frontier[0].is_baseline):
        traces.append(dict(type="scatter", x=[x.value(p) for p in frontier], y=[y.value(p) for p in frontier],
                           mode="lines", name="Pareto frontier", hoverinfo="skip",
                           line={"dash": "dash", "color": FRONTIER_COLOR, "width": 1.5}))
    xaxis: dict[str, Any] = {"title": {"text": x.title + (" ↑" if x.higher_better else " ↓")}}
    yaxis: dict[str, Any] = {"title": {"text": y.title + (" ↑" if y.higher_better else " ↓")}}
    if x.percent:
        xaxis["tickformat"] = percent_format([x.value(p) for p in points])
    if y.percent:
        yaxis["tickformat"] = percent_format([y.value(p) for p in points])
    return go.Figure({"data": traces, "layout": {
        "title": {"text": title, "font": {"size": 14}}, "height": 430, "margin": {"t": 50, "b": 40},
        "xaxis": xaxis, "yaxis": yaxis, "legend": {"orientation": "h", "y": -0.18}}})


def percent_format(values: list[float | None]) -> str:
    """A percent tick format with the decimals the values' spread needs: retentions of 99.1% to
    99.9% read "100%, 100%, 99%, 99%" with none."""
    shown = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    spread = max(shown) - min(shown) if len(shown) > 1 else 1.0
    return ".0%" if spread >= 0.05 else ".1%" if spread >= 0.005 else ".2%"


def _bubble_sizes(points: list[Any], size: Axis | None) -> list[float]:
    """Marker diameters: area grows with the figure (memory or disk), 10 where it is missing."""
    if size is None:
        return [14.0] * len(points)
    values = [size.value(p) for p in points]
    top = max((v for v in values if isinstance(v, int | float) and v > 0), default=0.0)
    return [10.0 if not isinstance(v, int | float) or v <= 0 or not top else 10 + 34 * math.sqrt(v / top)
            for v in values]


def _hover(p: Any, x: Axis, y: Axis, size: Axis | None) -> str:
    def fmt(axis: Axis) -> str:
        v = axis.value(p)
        if not isinstance(v, int | float):
            return f"{axis.title}: n/a"
        return f"{axis.title}: {v:.1%}" if axis.percent else f"{axis.title}: {v:.4g}"

    lines = [f"<b>{p.label}</b>" + (" (baseline)" if p.is_baseline else ""), fmt(x), fmt(y)]
    if size is not None:
        lines.append(fmt(size))
    if p.unlike:
        lines.append("⚠ not comparable: " + ", ".join(p.unlike))
    lines += [f"recipe: {p.recipe}", f"toolkits: {p.versions}", "click to open its Model page"]
    return "<br>".join(lines)
