"""One comparison, ready to draw or export: its results against a baseline, the gates, the
frontiers, "best that passes" and the figures. The Compare page, the saved link and every export
build it from the same spec, so they cannot disagree."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import plotly.graph_objects as go

from bench import compare
from bench.baseline import lineage_words, reference_variant
from bench.charts import Axis, comparison_figure, metrics_for, rows_from_results, tradeoff_figure
from bench.upstream_reports import REPORT_PROFILE
from catalog import config, db, results, sources, variants
from catalog.errors import InvalidInputError
from catalog.speed_caveats import SpeedCaveat, caveat_of

BUBBLES = {"memory": ("Memory rise, MB", "memory_mb"), "size": ("Size on disk, MB", "size_mb")}
COLOR_BY = {"format": "format", "toolkit": "toolkit"}


@dataclass
class CompareSpec:
    """What a comparison shows; saved as JSON with a saved comparison."""

    result_ids: list[str]
    baseline_result_id: str
    gates: dict[str, float] = field(default_factory=lambda: dict(config.DEFAULT_COMPARE_GATES))
    weights: dict[str, float] = field(default_factory=lambda: dict(compare.DEFAULT_WEIGHTS))
    include_unlike: bool = False
    bubble: str = "memory"
    color_by: str = "format"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ComparisonView:
    spec: CompareSpec
    task: str | None
    results: list[results.BenchmarkResult]
    baseline: results.BenchmarkResult
    points: list[compare.Point]
    gates: list[Any]
    verdicts: list[compare.Verdict]
    best: list[tuple[compare.Verdict, float]]
    misses: list[compare.Verdict]
    speed_frontier: list[compare.Point]
    size_frontier: list[compare.Point]
    missing: list[str]                 # result ids of the spec no longer stored
    measures: compare.TaskMeasures
    baseline_words: str = ""           # "hf F32, dequantized from gguf Q4_1 (as imported)"
    origins: list[str] = field(default_factory=list)  # the variants the baseline was made from
    caveats: dict[str, SpeedCaveat] = field(default_factory=dict)  # result id -> its speed's caveat

    def is_origin(self, point: compare.Point) -> bool:
        """Whether the baseline was made from this point's variant (the demo's reference is the
        dequantized Q4_1: ranking the Q4_1 rates it against its own dequantization)."""
        return not point.is_baseline and point.variant_id in self.origins

    def speed_caveats(self, points: list[compare.Point] | None = None) -> list[tuple[str, SpeedCaveat]]:
        """(label, caveat) of the given points (default: all), the baseline among them."""
        return [(p.label, self.caveats[p.result_id]) for p in (self.points if points is None else points)
                if p.result_id in self.caveats]

    def figures(self) -> dict[str, go.Figure]:
        """The two trade-off scatters and the grouped bars, by a stable name (exports use it)."""
        m = self.measures
        quality = Axis("Quality retention", lambda p: p.headline.get("quality_retention"), percent=True)
        speed = Axis(m.speed_title, lambda p: p.speed)
        size = Axis("Size on disk, MB", lambda p: p.size_mb, higher_better=False)
        title, attr = BUBBLES[self.spec.bubble]
        bubble = Axis(title, lambda p, attr=attr: getattr(p, attr), higher_better=False)
        color = COLOR_BY[self.spec.color_by]
        labels = {p.result_id: p.label for p in self.points}
        by_result = {r.id: r for r in self.results}
        bars, _ = comparison_figure(
            rows_from_results([by_result[p.result_id] for p in self.points], labels,
                              self.baseline.variant_id), metrics_for(self.task))
        return {
            "quality-vs-speed": tradeoff_figure(self.points, speed, quality, bubble, color, self.speed_frontier,
                                                f"Quality retention against {m.speed_title.lower()}"),
            "size-vs-quality": tradeoff_figure(self.points, size, quality, bubble, color, self.size_frontier,
                                               "Quality retention against size on disk"),
            "metrics": bars,
        }

    def headline_rows(self) -> list[dict[str, Any]]:
        """The chapter's table: each variant against the baseline, with its gates and score."""
        verdict = {v.point.result_id: v for v in self.verdicts}
        score = {v.point.result_id: s for v, s in self.best}
        rows = []
        for p in self.points:
            h = p.headline
            v = verdict.get(p.result_id)
            caveat = self.caveats.get(p.result_id)
            rows.append({
                "variant": p.label + (" (baseline)" if p.is_baseline else " (the baseline's origin)"
                                      if self.is_origin(p) else ""), "format": p.format,
                "toolkit": p.toolkit,
                "speed-up ×": _round(h["speedup"], 2),
                "speed caveat": caveat.words() if caveat else "",
                "speed repetitions": caveat.repetitions if caveat else None,
                "memory reduction %": _pct(h["memory_reduction"]),
                "size reduction %": _pct(h["size_reduction"]),
                "quality retention %": _pct(h["quality_retention"]),
                **{f"gate: {g.metric}": ("baseline" if p.is_baseline else "not compared" if v is None
                                         else "pass" if v.passed[g.metric] else "fail") for g in self.gates},
                "score": _round(score.get(p.result_id), 3),
                "comparable": "yes" if not p.unlike else "no: " + ", ".join(p.unlike),
                "variant_id": p.variant_id, "result_id": p.result_id,
            })
        return rows


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _describer(variant_ids: list[str]) -> Callable[[str], tuple[str, str, str, str, str]]:
    """describe(variant_id) over variants read in one query."""
    known = variants.variants_by_id(variant_ids)
    labels = variants.distinct_labels(known)

    def describe(variant_id: str) -> tuple[str, str, str, str, str]:
        v = known.get(variant_id)
        if v is None:
            return variant_id, "?", "?", "variant no longer stored", ""
        return _description(v, labels[variant_id])

    return describe


def _description(v: variants.Variant, label: str) -> tuple[str, str, str, str, str]:
    recipe = v.conversion + (" " + json.dumps(v.options, sort_keys=True) if v.options else "")
    versions = ", ".join(f"{k} {val}" for k, val in sorted(v.toolkit_versions.items())) or "not recorded"
    return label, v.format, v.backend, recipe, versions


def build_view(spec: CompareSpec) -> ComparisonView:
    """Read the spec's results (exactly those ids) and compute everything the page shows, on one
    catalog connection (its seven reads each opened one: 8 ms apiece on a 5 GB catalog)."""
    with db.connect(write=False):
        return _build_view(spec)


def _build_view(spec: CompareSpec) -> ComparisonView:
    found = results.results_by_id(list(dict.fromkeys([spec.baseline_result_id, *spec.result_ids])))
    by_id = {r.id: r for r in found}
    baseline = by_id.get(spec.baseline_result_id)
    if baseline is None:
        raise InvalidInputError("The baseline result of this comparison is no longer stored; pick another "
                                "baseline.")
    shown = [by_id[i] for i in dict.fromkeys([baseline.id, *spec.result_ids]) if i in by_id]
    task = sources.get_source(baseline.source_id).task
    points = compare.points_from_results(shown, baseline, task, _describer([r.variant_id for r in shown]))
    gates = compare.gates_from(spec.gates)
    pool = compare.comparable(points, spec.include_unlike)
    verdicts = compare.judge(pool, gates)
    quality = lambda p: p.headline.get("quality_retention")  # noqa: E731 - a key, like sorted's
    words, origins = lineage_words(baseline.variant_id)
    return ComparisonView(
        spec=spec, task=task, results=shown, baseline=baseline, points=points, gates=gates, verdicts=verdicts,
        best=compare.scores(verdicts, spec.weights), misses=compare.nearest_misses(verdicts),
        speed_frontier=compare.pareto_front(pool, lambda p: p.speed, quality),
        size_frontier=compare.pareto_front(pool, lambda p: p.size_mb, quality, x_higher=False),
        missing=[i for i in spec.result_ids if i not in by_id], measures=compare.measures_for(task),
        baseline_words=words, origins=origins, caveats={r.id: caveat_of(r) for r in shown})


# --------------------------------------------------------------------------- picking a comparison


def candidate_results(source_ids: list[str], profile: str) -> list[results.BenchmarkResult]:
    """The newest result of each variant of these sources on the profile (and of each other
    machine that ran it), then the newest imported report of each variant and machine (another
    protocol, so unlike any baseline of the profile): what a new comparison may show."""
    return [r for s in dict.fromkeys(source_ids) for p in (profile, REPORT_PROFILE)
            for r in results.latest_results(s, p)]


def result_label(result: results.BenchmarkResult, labels: dict[str, str]) -> str:
    """A result's name in the pickers: its variant's label (labels: variant_labels), and the
    machine that measured it when that is not this one."""
    return labels.get(result.variant_id, result.variant_id) + compare.machine_suffix(result)


def default_baseline(found: list[results.BenchmarkResult], source_id: str) -> str:
    """The result a new comparison is measured against: the source's reference run (its Hugging
    Face form, bench.baseline) when it has one, else the first result."""
    ref = reference_variant(source_id)
    return next((r.id for r in found if ref and r.variant_id == ref.id), found[0].id)


def variant_labels(variant_ids: list[str]) -> dict[str, str]:
    """variant id -> its label (its id where the variant is gone), read in one query."""
    known = variants.variants_by_id(variant_ids)
    labels = variants.distinct_labels(known)
    return {vid: labels.get(vid, vid) for vid in variant_ids}


def clicked_link(customdata: str | None) -> tuple[str, dict[str, str]] | None:
    """The page and query a clicked chart point links to (its customdata, "/model?id=..&variant=..",
    bench.charts), or None for a point without one."""
    if not customdata:
        return None
    link = urlsplit(customdata)
    return link.path.strip("/"), dict(parse_qsl(link.query))


def updated_result_ids(view: ComparisonView, newer: dict[str, str]) -> list[str]:
    """The comparison's results with each replaced by its variant's newer result (newer: variant id
    -> result id, catalog.results.newer_results), in the comparison's order."""
    swap = {r.id: newer.get(r.variant_id, r.id) for r in view.results}
    return [swap[i] for i in view.spec.result_ids if i in swap]
