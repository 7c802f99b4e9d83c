"""The benchmark job of a causal language model: speed and memory in a fresh runner process,
quality (perplexity, agreement, generations) against the source's reference form, stored with
the protocol, fingerprint and raw output."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from backends.registry import fingerprint_fields, get_format, main_file, open_runner
from backends.smoke import cached_outputs
from bench.fingerprint import fingerprint, fingerprint_id
from bench.jobs.common import machine_load, run_measure
from bench.metrics import causal_lm_quality, cv, llamacpp_perplexity, nonfinite_sentence, steady_runs, summary
from bench.protocol import EVAL_TEXT, CausalLMProtocol
from catalog import config
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.results import NONFINITE_FLAG, UNSTEADY_FLAG
from worker.context import JobContext

# A repetition during which other processes used more than this share of the CPU is set aside.
MAX_OTHER_SHARE = 0.10
# Repetitions whose decode tok/s vary more than this (sample std / mean) flag the result unsteady.
UNSTEADY_CV = 0.05


def _eval_ids(ctx: JobContext, source_id: str, reference: Variant) -> list[int]:
    """The eval text tokenized once with the source's tokenizer, cached in the data root."""
    cache = config.data_root() / "bench" / source_id / "eval_ids.json"
    if cache.exists():
        return json.loads(cache.read_text())
    runner = open_runner(reference.format, main_file(reference))
    ids = runner.tokenize(EVAL_TEXT.read_text())
    runner.close()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(ids))
    ctx.log(f"tokenized the eval text once with the source tokenizer: {len(ids)} tokens")
    return ids


def _speed(ctx: JobContext, variant: Variant, protocol: CausalLMProtocol, ids: list[int]) -> dict[str, Any]:
    return run_measure(ctx, {"format": variant.format, "path": str(main_file(variant)), "threads": protocol.threads,
                             "prompt_ids": ids[: protocol.prompt_tokens], "prompt_tokens": protocol.prompt_tokens,
                             "gen_tokens": protocol.gen_tokens, "warmup": protocol.warmup,
                             "repetitions": protocol.repetitions})


def _window_logits(fmt: str, path: Path, ids: list[int],
                   windows: list[tuple[int, int]]) -> tuple[list[np.ndarray], Any]:
    runner = open_runner(fmt, path, n_ctx=1024)
    return [runner.logits(ids[s:e]) for s, e in windows], runner


# The reference's logits are kept up to this size: the quick profile's 512 positions of the demo's
# 49,152-token vocabulary take 96 MB; the full profile's whole text would take gigabytes.
REFERENCE_CACHE_MAX_BYTES = 160 * 2**20


def _reference_logits(ctx: JobContext, reference: Variant, ids: list[int], windows: list[tuple[int, int]],
                      computed: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The source's reference logits on the scored windows: the same for every variant of the
    source, so computed once and kept with the reference's outputs (loading PyTorch and the
    demo's F32 weights for them took about 8 s of each benchmark). computed: the reference's own
    logits, when the variant measured is the reference itself (its runner already gave them)."""
    def compute() -> dict[str, np.ndarray]:
        if computed is not None:
            return {f"w{i}": a for i, a in enumerate(computed)}
        logits, runner = _window_logits(reference.format, main_file(reference), ids, windows)
        runner.close()
        return {f"w{i}": a for i, a in enumerate(logits)}

    folder = main_file(reference)
    folder = folder.parent if folder.is_file() else folder
    try:
        vocab = int(json.loads((folder / "config.json").read_text())["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        vocab = None
    positions = sum(e - s for s, e in windows)
    if vocab is None or positions * vocab * 4 > REFERENCE_CACHE_MAX_BYTES:
        return list(compute().values())
    probe = {"probe": "reference_logits", "ids": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
             "windows": [list(w) for w in windows],
             "runtime": get_format(reference.format).runtime_versions()}
    arrays = cached_outputs(reference, probe, compute)
    ctx.log(f"reference logits: {positions} positions of {reference.label}, kept for the source's other benchmarks")
    return [arrays[f"w{i}"] for i in range(len(windows))]


def run_causal_lm_benchmark(ctx: JobContext, variant: Variant, reference: Variant,
                             protocol: CausalLMProtocol) -> dict[str, Any]:
    ctx.progress(0.05, "tokenizing the eval text with the source tokenizer")
    ids = _eval_ids(ctx, variant.source_id, reference)

    before = machine_load()
    ctx.progress(0.15, f"measuring speed and memory ({protocol.repetitions} runs) in a fresh process")
    speed = _speed(ctx, variant, protocol, ids)
    load_after = os.getloadavg()

    windows = protocol.windows(len(ids))
    if variant.id == reference.id:  # the reference itself: its logits once, not twice
        ctx.progress(0.55, "quality: logits and generations")
        var_logits, runner = _window_logits(variant.format, main_file(variant), ids, windows)
        ref_logits = _reference_logits(ctx, reference, ids, windows, computed=var_logits)
    else:
        ctx.progress(0.55, "quality: reference logits")
        ref_logits = _reference_logits(ctx, reference, ids, windows)
        ctx.progress(0.75, "quality: variant logits and generations")
        var_logits, runner = _window_logits(variant.format, main_file(variant), ids, windows)
    quality = causal_lm_quality(ids, windows, var_logits, ref_logits)
    if "nonfinite_share" not in quality:
        ctx.progress(0.85, "quality: llama.cpp-compatible perplexity with the variant's own tokenizer")
        # a runtime with its own perplexity tool computes logits as that tool does (llama.cpp: flash attention)
        logits = getattr(runner, "upstream_logits", runner.logits)
        quality |= llamacpp_perplexity(runner.tokenize, logits, EVAL_TEXT.read_text(),
                                       protocol.compat_ctx, protocol.compat_chunks)
    generations = [{"prompt": p, "text": runner.generate(p, protocol.generation_tokens)} for p in protocol.gen_prompts]
    runtime = runner.runtime
    runner.close()

    runs, busy = steady_runs(speed["runs"], MAX_OTHER_SHARE)
    decode_cv = cv([r["decode_tps"] for r in runs])
    metrics = {
        "size_mb": variant.size_bytes / 2**20,
        "load_s": speed["load_s"],
        "ttft_s": summary([r["ttft_s"] for r in runs])["mean"],
        **{f"prefill_tps_{k}": v for k, v in summary([r["prefill_tps"] for r in runs]).items()},
        **{f"decode_tps_{k}": v for k, v in summary([r["decode_tps"] for r in runs]).items()},
        "token_latency_ms_p50": 1000 * float(np.percentile([t for r in runs for t in r["token_s"]], 50)),
        "token_latency_ms_p90": 1000 * float(np.percentile([t for r in runs for t in r["token_s"]], 90)),
        "peak_rss_mb": speed["peak_rss"] / 2**20,
        "memory_rise_mb": speed["memory_rise"] / 2**20,
        "decode_tps_cv": decode_cv,
        "repetitions_kept": len(runs),
        **quality,
    }
    flags = before.flags(busy_repetitions=busy)
    if "nonfinite_share" in quality:
        flags.append(NONFINITE_FLAG)
    if decode_cv > UNSTEADY_CV:
        flags.append(UNSTEADY_FLAG)
    fp = fingerprint(protocol.threads, runtime, device=speed.get("device"),
                     runner_fields=fingerprint_fields(variant.format))
    raw = {"speed": speed, "generations": generations, "windows": windows, "eval_tokens": len(ids),
           "protocol": protocol.__dict__ | {"id": protocol.id}, "cpu_percent_before": before.cpu_percent,
           "loadavg_before": before.loadavg, "loadavg_after": load_after, "reference_variant": reference.id}
    rid = ctx.record_result(variant_id=variant.id, source_id=variant.source_id,
                            protocol_id=protocol.id, profile=protocol.profile, runtime=runtime,
                            fingerprint_id=fingerprint_id(fp), fingerprint=fp, metrics=metrics, raw=raw,
                            toolkit_versions=speed["versions"], flags=flags)
    if NONFINITE_FLAG in flags:
        raise InvalidInputError(nonfinite_sentence(variant, reference, metrics, "of the scored positions of the "
                                                   "eval text"))
    ctx.log(f"decode {metrics['decode_tps_p50']:.1f} tok/s, perplexity {metrics['perplexity']:.3f} "
            f"(source {metrics['reference_perplexity']:.3f}), agreement {metrics['top1_agreement']:.3f}")
    return {"result_id": rid, "decode_tps": metrics["decode_tps_p50"], "perplexity": metrics["perplexity"]}
