"""A comparison taken out of the catalog: a standalone HTML page (plotly's JavaScript inside, so
it opens offline), a PNG per chart (rendered by the machine's Chromium through kaleido), and the
data as CSV or JSON with its provenance: recipes, toolkit versions, fingerprints and protocols."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

from bench import compare
from bench.compare_view import ComparisonView
from catalog import variants
from catalog.speed_caveats import caveats_sentence, verdict_caveat

PNG_SIZE = (1000, 560)
# An exported chart's top margin: its title (name, chart and date; the baseline; the gates), then
# room for the metrics grid's panel titles.
PNG_TOP_MARGIN = 140
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
EXPORT_FORMATS = ("html", "png", "csv", "json")
# The plain-text table of `cli.py comparisons show`: (column of headline_rows, heading, width).
TEXT_COLUMNS = (("variant", "variant", 34), ("speed-up ×", "speed-up", 9), ("memory reduction %", "memory -%", 10),
                ("quality retention %", "quality %", 10), ("score", "score", 7), ("comparable", "comparable", 12),
                ("speed caveat", "speed caveat", 48))


class PngUnavailable(RuntimeError):
    """No Chromium for kaleido to render with."""


def provenance_rows(view: ComparisonView) -> list[dict[str, Any]]:
    """One row per result: the headline figures, the gates, and where the numbers came from:
    the variant's parent, the versions of the toolkits that made it (NNCF behind an OpenVINO
    INT4) and of the runtime that measured it, the machine and the metrics, as nested objects."""
    by_result = {r.id: r for r in view.results}
    points = {p.result_id: p for p in view.points}
    made = variants.variants_by_id([p.variant_id for p in view.points])
    rows = []
    for row in view.headline_rows():
        r, p = by_result[row["result_id"]], points[row["result_id"]]
        v = made.get(p.variant_id)
        rows.append({**row, "source_id": r.source_id, "parent_variant_id": v.parent_id if v else None,
                     "profile": r.profile, "protocol_id": r.protocol_id, "runtime": r.runtime,
                     "fingerprint_id": r.fingerprint_id, "created_at": str(r.created_at), "recipe": p.recipe,
                     "conversion_versions": v.toolkit_versions if v else {}, "runtime_versions": r.toolkit_versions,
                     "fingerprint": r.fingerprint, "flags": list(r.flags), "metrics": r.metrics})
    return rows


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A provenance row as spreadsheet columns: nested objects become "conversion_versions.nncf",
    "fingerprint.cpu", "metrics.perplexity"; lists are joined with ";"."""
    flat: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}.{k}", v)
        elif isinstance(value, (list, tuple)):
            flat[key] = ";".join(map(str, value))
        else:
            flat[key] = value

    for key, value in row.items():
        put(key, value)
    return flat


def to_csv(view: ComparisonView) -> str:
    rows = [flat_row(r) for r in provenance_rows(view)]
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["result_id"]  # every row's, in order
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_json(view: ComparisonView, name: str = "") -> str:
    return json.dumps({
        "name": name, "spec": view.spec.to_dict(), "baseline_result_id": view.baseline.id,
        "baseline": view.baseline_words, "baseline_made_from": view.origins, "task": view.task,
        "verdict": best_sentence(view), "speed_caveats": caveats_sentence(view.speed_caveats()),
        "gates": [{"metric": g.metric, "minimum": g.minimum} for g in view.gates],
        "best_definition": compare.SCORE_DEFINITION,
        "best": [{"result_id": v.point.result_id, "score": s} for v, s in view.best],
        "rows": provenance_rows(view),
    }, indent=2, default=str)


def to_html(view: ComparisonView, name: str, link: str = "") -> str:
    """One self-contained page: the headline table, the gates' verdict and the three charts."""
    figures = view.figures()
    parts = []
    for i, fig in enumerate(figures.values()):
        # plotly's JavaScript once, with the first chart; nothing is fetched when the file opens
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    rows = view.headline_rows()
    cols = [c for c in (rows[0] if rows else {}) if c not in ("variant_id", "result_id")]
    table = "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in cols) + "</tr>"
        for r in rows) + "</table>"
    verdict = html.escape(best_sentence(view))
    caveats = caveats_sentence(view.speed_caveats())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(name)}</title>
<style>body{{font-family:sans-serif;margin:24px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px}} .note{{color:#555;font-size:13px}}
.caveat{{background:#fff4d6;padding:6px 10px}}</style></head><body>
<h1>{html.escape(name)}</h1>
<p class="note">Exported from Model Catalog{(' · ' + html.escape(link)) if link else ''}.
{html.escape(baseline_sentence(view))} Gates: {html.escape(gates_sentence(view))}.</p>
<h2>Best that passes</h2><p>{verdict}</p>{f'<p class="caveat">{html.escape(caveats)}</p>' if caveats else ''}
<p class="note">{html.escape(compare.SCORE_DEFINITION)}</p>
<h2>Against the baseline</h2>{table}
{''.join(parts)}
</body></html>"""


def to_text(view: ComparisonView) -> str:
    """The verdict, the gates and the headline table as plain text (the CLI's `comparisons show`)."""
    def cell(value: Any, width: int) -> str:
        return ("–" if value is None else str(value))[:width].ljust(width)

    caveats = caveats_sentence(view.speed_caveats())
    lines = [baseline_sentence(view), best_sentence(view), *([caveats] if caveats else []),
             f"Gates: {gates_sentence(view)}.", "",
             " ".join(cell(title, width) for _, title, width in TEXT_COLUMNS).rstrip()]
    lines += [" ".join(cell(row[key], width) for key, _, width in TEXT_COLUMNS).rstrip()
              for row in view.headline_rows()]
    return "\n".join(lines)


def file_stem(name: str) -> str:
    """The file name of a comparison's exports: its name, with what a file system or a shell
    trips over (slashes, spaces, quotes) made underscores."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "comparison"


def export_files(view: ComparisonView, name: str, link: str, formats: tuple[str, ...] | list[str]
                 ) -> dict[str, bytes]:
    """File name -> contents of the exports the Compare page offers, for the given formats (one
    PNG per chart): what `cli.py comparisons export` writes. PngUnavailable without Chromium."""
    stem, files = file_stem(name), {}
    for fmt in formats:
        if fmt == "html":
            files[f"{stem}.html"] = to_html(view, name, link).encode()
        elif fmt == "csv":
            files[f"{stem}.csv"] = to_csv(view).encode()
        elif fmt == "json":
            files[f"{stem}.json"] = to_json(view, name).encode()
        elif fmt == "png":
            files.update({f"{stem}-{chart}.png": to_png(fig) for chart, fig in export_figures(view, name).items()})
        else:
            raise ValueError(f"no export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    return files


def gates_sentence(view: ComparisonView) -> str:
    return "; ".join(f"{compare.METRIC_NAMES.get(g.metric, g.metric).capitalize()} ≥ {_gate_value(g.metric, g.minimum)}"
                     for g in view.gates)


def _gate_value(metric: str, value: float, precise: bool = False) -> str:
    if metric == "speedup":
        return f"{value:.2f}×" if precise else f"{value:g}×"
    return f"{100 * value:.1f}%" if precise else f"{100 * value:g}%"


def best_sentence(view: ComparisonView) -> str:
    """The verdict in one or two sentences: the winner, or that nothing passes and the nearest
    misses; and, where it applies, that the winner is what the baseline was made from, and that
    the speed it rests on (the baseline's, the winner's or the misses') is flagged."""
    if not view.verdicts:
        return "Nothing to judge: add variants beside the baseline."
    base = [p for p in view.points if p.is_baseline]
    if view.best:
        top, score = view.best[0]
        text = f"{top.point.label} passes every gate and scores best ({score:.3f})."
        if view.is_origin(top.point):
            text += (f" It is what the baseline was made from ({view.baseline_words}), so it is rated against its "
                     "own conversion.")
        return text + verdict_caveat(view.speed_caveats([*base, top.point]))
    misses = "; ".join(f"{v.point.label} fails {', '.join(_failure(view, v, m) for m in v.failed_gates())}"
                       for v in view.misses)
    return (f"No variant passes every gate. Nearest misses: {misses}."
            + verdict_caveat(view.speed_caveats([*base, *(v.point for v in view.misses)])))


def baseline_sentence(view: ComparisonView) -> str:
    """The baseline in words, with its lineage and result id: what every ratio is measured against."""
    return f"Baseline: {view.baseline_words or view.baseline.variant_id}; result {view.baseline.id}."


def _failure(view: ComparisonView, verdict: compare.Verdict, metric: str) -> str:
    value = verdict.point.headline.get(metric)
    minimum = next(g.minimum for g in view.gates if g.metric == metric)
    shown = "n/a" if value is None else _gate_value(metric, value, precise=True)
    return f"{compare.METRIC_NAMES.get(metric, metric)} {shown} (needs ≥ {_gate_value(metric, minimum)})"


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


def export_figures(view: ComparisonView, name: str, when: datetime | None = None) -> dict[str, go.Figure]:
    """The charts as a PNG shows them out of context: each titled with the comparison's name and
    date, under it the baseline and the gates, so a pasted image still says what it compares."""
    day = f"{(when or datetime.now(UTC)):%Y-%m-%d}"
    text = _title_text
    subtitle = f"{text(baseline_sentence(view))}<br>Gates: {text(gates_sentence(view))}."
    out = {}
    for chart, fig in view.figures().items():
        fig = go.Figure(fig)  # a copy: the page's figure keeps its own title
        what = fig.layout.title.text or "Metrics against the baseline"
        fig.update_layout(title={"text": f"<b>{text(name)}</b> · {text(what)} · {day}"
                                         f"<br><span style='font-size:12px'>{subtitle}</span>",  # 3 lines
                                 "x": 0.01, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
                                 "pad": {"t": 30}, "font": {"size": 16}},
                          margin={**fig.layout.margin.to_plotly_json(), "t": PNG_TOP_MARGIN})
        out[chart] = fig
    return out


def _title_text(words: str) -> str:
    """Words for a plotly title: it reads tags there, so <, > and & are escaped; quotes stay."""
    return html.escape(words, quote=False)


def png_size_of(fig: go.Figure) -> tuple[int, int]:
    """The PNG's size: the chart's own height where it sets one (the metrics grid grows a row per
    two metrics: squeezed into 560 px its panel titles sat on the tick labels above)."""
    height = fig.layout.height
    return PNG_SIZE[0], max(PNG_SIZE[1], int(height) + PNG_TOP_MARGIN if height else PNG_SIZE[1])


def to_png(fig: go.Figure, size: tuple[int, int] | None = None) -> bytes:
    """A PNG of one chart (at png_size_of by default), drawn offline by kaleido in the machine's Chromium."""
    size = size or png_size_of(fig)
    browser = os.environ.get("BROWSER_PATH") or chromium_path()
    if not browser:
        raise PngUnavailable("PNG export needs Chromium, which is not installed here; install it (apt install "
                             "chromium) or download the interactive HTML instead.")
    os.environ["BROWSER_PATH"] = browser  # where kaleido's choreographer looks for a browser
    try:
        return fig.to_image(format="png", width=size[0], height=size[1])
    except Exception as exc:  # kaleido raises its own kinds when Chromium fails to start or render
        raise PngUnavailable(f"Chromium could not draw the chart ({type(exc).__name__}: {exc}); download the "
                             "interactive HTML instead, or try again when the server is less busy.") from exc
