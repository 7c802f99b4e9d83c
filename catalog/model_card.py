"""The README.md of an exported variant: a Hugging Face model card, so Hub users read the
variant's origin (base_model, base_model_relation), recipe, toolkit versions and benchmarks the
way they read any quantized model's card."""

from __future__ import annotations

import json
import re
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from catalog.records import Source, Variant
from catalog.results import BenchmarkResult, results_for_variant
from catalog.speed_caveats import caveat_of

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
FLOAT_PRECISIONS = {"F32", "F16", "BF16", "FP32", "FP16", "FLOAT", "FLOAT32", "FLOAT16"}
# The figures a card shows, in order, with how to print them.
CARD_METRICS = (
    ("decode_tps_p50", "Decode tokens/s", "{:.1f}"), ("prefill_tps_p50", "Prefill tokens/s", "{:.1f}"),
    ("ttft_s", "Time to first token, s", "{:.3f}"), ("perplexity", "Perplexity", "{:.3f}"),
    ("quality_retention", "Quality retention", "{:.1%}"), ("top1_agreement", "Top-1 agreement", "{:.3f}"),
    ("latency_ms_p50", "Latency p50, ms", "{:.2f}"), ("throughput_per_s", "Throughput, inputs/s", "{:.1f}"),
    ("accuracy", "Accuracy", "{:.4f}"), ("cosine_mean", "Cosine with source", "{:.4f}"),
    ("size_mb", "Size on disk, MB", "{:.4g}"), ("memory_rise_mb", "Memory rise, MB", "{:.0f}"),
)


def is_quantized(variant: Variant) -> bool:
    return (variant.precision or "").upper() not in FLOAT_PRECISIONS


def card_data(variant: Variant, source: Source, hub_library: str) -> ModelCardData:
    base = source.origin_ref if source.origin_ref and HUB_ID.match(source.origin_ref) else None
    return ModelCardData(
        base_model=base, base_model_relation="quantized" if base and is_quantized(variant) else None,
        library_name=hub_library or None, license=source.license or None, pipeline_tag=source.task or None,
        tags=["model-catalog", variant.format, *([variant.precision] if variant.precision else [])])


def benchmark_table(results: list[BenchmarkResult]) -> str:
    """One column per profile (the newest result of each), one row per figure any of them has."""
    newest: dict[str, BenchmarkResult] = {}
    for r in results:  # newest first
        newest.setdefault(r.profile, r)
    if not newest:
        return "Not benchmarked yet in the catalog it was exported from."
    profiles = list(newest)
    lines = ["| Figure | " + " | ".join(profiles) + " |", "|---|" + "---|" * len(profiles)]
    for key, title, pattern in CARD_METRICS:
        values = [newest[p].metrics.get(key) for p in profiles]
        if any(isinstance(v, int | float) for v in values):
            lines.append(f"| {title} | " + " | ".join(pattern.format(v) if isinstance(v, int | float) else "–"
                                                      for v in values) + " |")
    caveats = [caveat_of(newest[p]) for p in profiles]
    if any(c.flagged or c.repetitions for c in caveats):  # what the speed rows above stand on
        lines.append("| Speed caveat | " + " | ".join(
            (c.words() if c.flagged else f"none ({c.repetitions} repetitions)" if c.repetitions else "–")
            for c in caveats) + " |")
    first = newest[profiles[0]]
    lines.append("")
    fp = first.fingerprint
    lines.append(f"Runtime: {first.runtime}; protocol `{first.protocol_id}`; machine: {fp.get('cpu', '?')}, "
                 f"{fp.get('threads', '?')} threads.")
    return "\n".join(lines)


def shown_recipe(options: dict[str, Any], unused: list[str]) -> tuple[dict[str, Any], str]:
    """The recipe's options that took part, and a sentence naming those no step read ("" if
    none): a default calibration that never ran must not read as a calibration."""
    if not unused:
        return options, ""
    names = ", ".join(f"`{k}`" for k in unused)
    return ({k: v for k, v in options.items() if k not in unused},
            f"Not used by this recipe, so left out above: {names} (no step read it, e.g. no calibration ran).")


def model_card(variant: Variant, source: Source, lineage: list[Variant], hub_library: str,
               unused: list[str] | None = None) -> str:
    """The card's text: YAML metadata, then recipe (without the options in `unused`, which no
    step read), lineage, toolkit versions and benchmarks."""
    data = card_data(variant, source, hub_library)
    options, unused_note = shown_recipe(variant.options, unused or [])
    chain = " → ".join(f"{a.label} (`{a.id}`)" for a in reversed(lineage))
    versions = "\n".join(f"| {k} | {v} |" for k, v in sorted(variant.toolkit_versions.items()))
    body = f"""
# {source.name} · {variant.label}

{variant.label} variant of {_origin(source)}, made and checked by Model Catalog (variant `{variant.id}`).
See RUN.md for how to run it.

## Recipe

Conversion `{variant.conversion}` ({variant.backend}), options:

```json
{json.dumps(options, indent=2, sort_keys=True)}
```
{unused_note}

Lineage: {chain + ' → ' if chain else ''}{variant.label} (`{variant.id}`)

## Toolkit versions

| Package | Version |
|---|---|
{versions or '| – | not recorded |'}

## Benchmarks

{benchmark_table(results_for_variant(variant.id))}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}").content


def _origin(source: Source) -> str:
    if source.origin_ref and HUB_ID.match(source.origin_ref):
        return f"[{source.origin_ref}](https://huggingface.co/{source.origin_ref})"
    return f"{source.name} ({source.origin_ref or source.origin_kind})"
