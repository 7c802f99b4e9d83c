"""The trade-off between variants: the chapter's headline figures, its quality gates, the Pareto
frontiers and "best that passes", computed from stored results against one baseline result.

Pure functions over plain records, so the Compare page, the exports and the tests all read the
same numbers. The gates are `backends.registry.Gate` objects, the same kind every conversion's
smoke test uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.registry import Gate
from bench.fingerprint import device_class, fingerprint_id
from catalog.results import IMPORTED_FLAG, NONFINITE_FLAG
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS

GATE_HINTS = {
    "quality_retention": "try a wider quantization (more bits, a smaller group) or a data-aware method",
    "speedup": "try a lower precision or a runtime with faster kernels for this CPU",
    "memory_reduction": "try a lower precision; a runtime's own overhead may dominate on a small model",
}
METRIC_NAMES = {"speedup": "speed-up", "memory_reduction": "memory reduction", "size_reduction": "size reduction",
                "quality_retention": "quality retention"}
DEFAULT_WEIGHTS: dict[str, float] = {"speedup": 1.0, "quality_retention": 1.0, "memory_reduction": 1.0}
SCORE_DEFINITION = (
    "Best that passes: among the variants that pass every gate (and are comparable with the baseline), "
    "the highest score = Σ weight × (figure ÷ the best candidate's figure) ÷ Σ weights, over speed-up, "
    "quality retention and memory reduction. Each term is 1 for the candidate that leads on it; a missing "
    "or negative figure counts 0. Ties go to the smaller variant on disk.")


@dataclass(frozen=True)
class TaskMeasures:
    """Which stored metrics stand for speed and quality in one task's protocol."""

    speed: str
    speed_title: str
    quality: str
    quality_title: str
    quality_higher_better: bool
    # A figure already measured against the source (cosine): the source itself scores 1.
    quality_against_source: bool = False


def measures_for(task: str | None) -> TaskMeasures:
    if task == "image-classification":
        return TaskMeasures("throughput_per_s", "Throughput, inputs/s", "accuracy", "Accuracy", True)
    if task in ENCODER_CLASSIFIER_TASKS:
        return TaskMeasures("throughput_per_s", "Throughput, inputs/s", "cosine_mean",
                            "Cosine similarity with source", True, quality_against_source=True)
    return TaskMeasures("decode_tps_p50", "Decode tokens/s", "perplexity", "Perplexity", False)


@dataclass
class Point:
    """One result placed against the baseline."""

    result_id: str
    variant_id: str
    source_id: str
    label: str
    format: str
    toolkit: str
    size_mb: float | None
    memory_mb: float | None
    speed: float | None
    quality: float | None
    headline: dict[str, float | None]            # METRIC_NAMES keys -> ratio (not %)
    is_baseline: bool = False
    unlike: list[str] = field(default_factory=list)  # why it is not comparable with the baseline
    recipe: str = ""
    versions: str = ""


@dataclass
class Verdict:
    point: Point
    passed: dict[str, bool]                      # gate metric -> passes
    shortfall: float                             # 0 when every gate passes

    @property
    def passes_all(self) -> bool:
        return all(self.passed.values())

    def failed_gates(self) -> list[str]:
        return [m for m, ok in self.passed.items() if not ok]


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or not _finite(value) or not _finite(base) or base == 0:
        return None
    return value / base


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def headline(metrics: Mapping[str, Any], base: Mapping[str, Any], measures: TaskMeasures,
             quality_failed: bool = False) -> dict[str, float | None]:
    """Speed-up (×), memory and size reduction (fractions) and quality retention (fraction) of one
    result against the baseline's metrics; None where either side lacks the figure."""
    speedup = _ratio(metrics.get(measures.speed), base.get(measures.speed))
    mem = _ratio(metrics.get("memory_rise_mb"), base.get("memory_rise_mb"))
    size = _ratio(metrics.get("size_mb"), base.get("size_mb"))
    q, q_base = metrics.get(measures.quality), base.get(measures.quality)
    if measures.quality_against_source and q_base is None:
        q_base = 1.0
    if quality_failed:
        retention = None
    elif measures.quality_higher_better:
        retention = _ratio(q, q_base)
    else:  # perplexity: lower is better, so the baseline's over the variant's
        retention = _ratio(q_base, q)
    return {"speedup": speedup, "memory_reduction": None if mem is None else 1 - mem,
            "size_reduction": None if size is None else 1 - size, "quality_retention": retention}


def unlike_reasons(result: Any, base: Any) -> list[str]:
    """Why a result cannot be set beside the baseline: another protocol, machine or runtime
    setting, a simulated device, or a result imported from elsewhere."""
    reasons = []
    if result.protocol_id != base.protocol_id:
        reasons.append("another protocol")
    elif _fp_id(result) != _fp_id(base):
        reasons.append("another machine or runtime setting")
    device = device_class(str((result.fingerprint or {}).get("target", "")))
    if device != "CPU" and device != device_class(str((base.fingerprint or {}).get("target", ""))):
        reasons.append(f"a simulated or other device ({device})")
    if IMPORTED_FLAG in result.flags:
        reasons.append("imported from another machine")
    return reasons


def _fp_id(result: Any) -> str:
    # recomputed, so results stored before the id's definition changed still compare
    return fingerprint_id(result.fingerprint) if result.fingerprint else result.fingerprint_id


def machine_suffix(result: Any) -> str:
    """" @ <machine>" for a result measured elsewhere (a device run, an upstream tool's report), so
    every chart and table names the machine; "" for this machine's own."""
    if IMPORTED_FLAG not in result.flags:
        return ""
    machine = (result.fingerprint or {}).get("machine") or "another machine"
    kind = "device run" if "device_run" in result.flags else "report" if "upstream_report" in result.flags else ""
    return f" @ {machine}" + (f" ({kind})" if kind else "")


def points_from_results(results: list[Any], baseline: Any, task: str | None,
                        describe: Callable[[str], tuple[str, str, str, str, str]]) -> list[Point]:
    """One Point per result; describe(variant_id) gives (label, format, toolkit, recipe, versions)."""
    measures = measures_for(task)
    out = []
    for r in results:
        label, fmt, toolkit, recipe, versions = describe(r.variant_id)
        label += machine_suffix(r)
        failed = NONFINITE_FLAG in r.flags
        is_base = r.id == baseline.id
        out.append(Point(
            result_id=r.id, variant_id=r.variant_id, source_id=r.source_id, label=label, format=fmt,
            toolkit=toolkit, size_mb=r.metrics.get("size_mb"), memory_mb=r.metrics.get("memory_rise_mb"),
            speed=r.metrics.get(measures.speed), quality=None if failed else r.metrics.get(measures.quality),
            headline=headline(r.metrics, baseline.metrics, measures, failed), is_baseline=is_base,
            unlike=[] if is_base else unlike_reasons(r, baseline), recipe=recipe, versions=versions))
    return out


def gates_from(minimums: Mapping[str, float]) -> list[Gate]:
    """Gate objects (the conversions' own kind) from {metric: minimum}."""
    return [Gate(metric, float(minimum), GATE_HINTS.get(metric, "")) for metric, minimum in minimums.items()]


def judge(points: Iterable[Point], gates: list[Gate]) -> list[Verdict]:
    """Pass or fail per gate for every non-baseline point; the shortfall sums how far below each
    failed gate it sits, relative to the gate (a missing figure counts as a full miss)."""
    verdicts = []
    for p in points:
        if p.is_baseline:
            continue
        passed, shortfall = {}, 0.0
        for gate in gates:
            value = p.headline.get(gate.metric)
            passed[gate.metric] = gate.passes(value)
            if not passed[gate.metric]:
                shortfall += 1.0 if value is None else (gate.minimum - value) / (abs(gate.minimum) or 1.0)
        verdicts.append(Verdict(p, passed, shortfall))
    return verdicts


def pareto_front(points: list[Point], x: Callable[[Point], float | None], y: Callable[[Point], float | None],
                 x_higher: bool = True, y_higher: bool = True) -> list[Point]:
    """The points no other point beats on both axes (at least as good on both, better on one).
    Points missing either figure are left out; identical points are all on the front. Sorted by x."""
    def key(p: Point) -> tuple[float, float] | None:
        vx, vy = x(p), y(p)
        if not _finite(vx) or not _finite(vy):
            return None
        return (vx if x_higher else -vx, vy if y_higher else -vy)

    keyed = [(p, k) for p in points if (k := key(p)) is not None]
    front = [p for p, (a, b) in keyed
             if not any(c >= a and d >= b and (c > a or d > b) for _, (c, d) in keyed)]
    return sorted(front, key=lambda p: (key(p) or (0, 0))[0] * (1 if x_higher else -1))


def comparable(points: list[Point], include_unlike: bool) -> list[Point]:
    return [p for p in points if include_unlike or not p.unlike]


def scores(verdicts: list[Verdict], weights: Mapping[str, float]) -> list[tuple[Verdict, float]]:
    """The candidates that pass every gate, best first, with the score SCORE_DEFINITION states."""
    candidates = [v for v in verdicts if v.passes_all]
    total = sum(max(w, 0.0) for w in weights.values()) or 1.0
    best = {m: max((v.point.headline.get(m) or 0.0 for v in candidates), default=0.0) for m in weights}
    scored = []
    for v in candidates:
        s = sum(max(w, 0.0) * max(v.point.headline.get(m) or 0.0, 0.0) / best[m]
                for m, w in weights.items() if best[m] > 0)
        scored.append((v, s / total))
    return sorted(scored, key=lambda vs: (-vs[1], vs[0].point.size_mb or math.inf, vs[0].point.label))


def nearest_misses(verdicts: list[Verdict], n: int = 3) -> list[Verdict]:
    misses = [v for v in verdicts if not v.passes_all]
    return sorted(misses, key=lambda v: (v.shortfall, v.point.label))[:n]
