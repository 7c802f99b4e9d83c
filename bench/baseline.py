"""Which variants a benchmark measures, and against which baseline: read by the Benchmarks and
Compare pages, the CLI and the benchmark jobs alike, so the page shows what the job will measure."""

from __future__ import annotations

from backends.registry import REFERENCE_FORMAT, formats_running, made_how
from catalog.records import Variant
from catalog.results import latest_results
from catalog.sources import get_source
from catalog.variants import ancestors, find_variant, get_variant, variants_of_source
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS

BASELINE_ADDED = ("The baseline (the source's safetensors form) has no result on this profile yet; it is "
                  "measured first.")


def reference_variant(source_id: str, family: list[Variant] | None = None) -> Variant | None:
    """The source's Hugging Face form (FP32 preferred): the baseline every variant is scored against."""
    family = family if family is not None else variants_of_source(source_id, include_deleted=False)
    forms = [v for v in family if v.format == REFERENCE_FORMAT and v.state == "available"]
    forms.sort(key=lambda v: (v.precision != "F32", v.created_at))
    if forms:
        return forms[0]
    # An imported float encoder or classifier graph (ONNX) is its own baseline, run in its runtime.
    roots = [v for v in family if v.parent_id is None and v.format in formats_running(encoder_classifier=True)
             and v.state == "available" and v.precision == "float"]
    return roots[0] if roots and get_source(source_id).task in ENCODER_CLASSIFIER_TASKS else None


def benchmark_formats(task: str | None) -> tuple[str, ...]:
    """The variant formats a runner can benchmark for a task."""
    return formats_running(encoder_classifier=task in ENCODER_CLASSIFIER_TASKS)


def benchmark_set(variant_ids: list[str], profile: str) -> list[str]:
    """What a request to benchmark variant_ids measures: first each of their sources' baseline
    that has no result on this profile yet and was not asked for (every comparison needs its
    baseline, measured on the same protocol), then the variants asked for. The Benchmarks page
    and `cli.py bench run` both submit this set."""
    baselines: list[str] = []
    for source_id in dict.fromkeys(get_variant(vid).source_id for vid in variant_ids):
        baseline = reference_variant(source_id)
        if baseline is None or baseline.id in variant_ids:
            continue
        if baseline.id not in {r.variant_id for r in latest_results(source_id, profile)}:
            baselines.append(baseline.id)
    return [*baselines, *variant_ids]


def lineage_words(variant_id: str) -> tuple[str, list[str]]:
    """A baseline named in words with what it was made from, e.g. "hf F32, dequantized from gguf
    Q4_1 (as imported)", and the ids of the variants it was made from (nearest first): a
    comparison that ranks one of those rates a file against its own conversion, and says so."""
    variant = find_variant(variant_id)
    if variant is None:
        return f"variant {variant_id} (no longer stored)", []
    chain = [variant, *ancestors(variant_id)]
    words = variant.label + "".join(f", {made_how(child.backend, child.conversion)} from {parent.label}"
                                    for child, parent in zip(chain, chain[1:], strict=False))
    if chain[-1].parent_id is None:
        words += " (as imported)"
    return words, [a.id for a in chain[1:]]
