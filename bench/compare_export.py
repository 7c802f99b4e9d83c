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
from typing import Any

import plotly.graph_objects as go

from bench import compare
from bench.compare_view import ComparisonView
from bench.speed_caveats import caveats_sentence, verdict_caveat

PNG_SIZE = (1000, 560)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
EXPORT_FORMATS = ("html", "png", "csv", "json")
# The plain-text table of `cli.py comparisons show`: (column of headline_rows, heading, width).
TEXT_COLUMNS = (("variant", "variant", 34), ("speed-up ×", "speed-up", 9), ("memory reduction %", "memory -%", 10),
                ("quality retention %", "quality %", 10), ("score", "score", 7), ("comparable", "comparable", 12),
                ("speed caveat", "speed caveat", 48))


class PngUnavailable(RuntimeError):
    """No Chromium for kaleido to render with."""


def provenance_rows(view: ComparisonView) -> list[dict[str, Any]]:
    """One flat row per result: the headline figures, the gates, and where the numbers came from."""
    by_result = {r.id: r for r in view.results}
    points = {p.result_id: p for p in view.points}
    rows = []
    for row in view.headline_rows():
        r, p = by_result[row["result_id"]], points[row["result_id"]]
        rows.append({**row, "source_id": r.source_id, "profile": r.profile, "protocol_id": r.protocol_id,
                     "runtime": r.runtime, "fingerprint_id": r.fingerprint_id, "created_at": str(r.created_at),
                     "recipe": p.recipe, "toolkit_versions": json.dumps(r.toolkit_versions, sort_keys=True),
                     "fingerprint": json.dumps(r.fingerprint, sort_keys=True),
                     "flags": ";".join(r.flags), "metrics": json.dumps(r.metrics, sort_keys=True)})
    return rows


def to_csv(view: ComparisonView) -> str:
    rows = provenance_rows(view)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["result_id"])
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
            files.update({f"{stem}-{chart}.png": to_png(fig) for chart, fig in view.figures().items()})
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


def to_png(fig: go.Figure, size: tuple[int, int] = PNG_SIZE) -> bytes:
    """A PNG of one chart, drawn offline by kaleido in the machine's Chromium."""
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
