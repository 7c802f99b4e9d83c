"""A benchmark as a job: speed and memory in a fresh runner process, quality against the
source's reference form, stored with the protocol, fingerprint and raw output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import numpy as np
import psutil

from bench.fingerprint import fingerprint, fingerprint_id
from bench.metrics import causal_lm_quality, cv, llamacpp_perplexity, nonfinite_sentence, steady_runs, summary
from bench.protocol import EVAL_TEXT, CausalLMProtocol, protocol_for
from bench.runners import RUNNER_MODULES, open_runner
from bench.tensor_inputs import TENSOR_TASKS
from catalog import config, jobs
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.results import NONFINITE_FLAG
from catalog.sources import get_source
from catalog.variants import get_variant, main_file, variants_of_source
from worker.context import JobContext
from worker.proc import child_environment, die_with_parent

log = logging.getLogger(__name__)

LOADED_CPU_PERCENT = 50.0  # other work above this share of the CPU before the run flags a result
# A repetition during which other processes used more than this share of the CPU is set aside.
MAX_OTHER_SHARE = 0.10
# Repetitions whose decode tok/s vary more than this (sample std / mean) flag the result unsteady.
UNSTEADY_CV = 0.05
TENSOR_FORMATS = ("hf", "onnx")  # encoders and classifiers: the PyTorch reference and ONNX Runtime


def reference_variant(source_id: str, family: list[Variant] | None = None) -> Variant | None:
    """The source's Hugging Face form (FP32 preferred): the baseline every variant is scored against."""
    family = family if family is not None else variants_of_source(source_id, include_deleted=False)
    forms = [v for v in family if v.format == "hf" and v.state == "available"]
    forms.sort(key=lambda v: (v.precision != "F32", v.created_at))
    if forms:
        return forms[0]
    # An imported float ONNX encoder or classifier is its own baseline (run in ONNX Runtime).
    roots = [v for v in family if v.parent_id is None and v.format == "onnx" and v.state == "available"
             and v.precision == "float"]
    return roots[0] if roots and get_source(source_id).task in TENSOR_TASKS else None


def benchmark_formats(task: str | None) -> tuple[str, ...]:
    """The variant formats a runner can benchmark for a task."""
    return TENSOR_FORMATS if task in TENSOR_TASKS else tuple(RUNNER_MODULES)


def submit_benchmarks(variant_ids: list[str], profile: str, submitted_by: str | None = None) -> list[jobs.Submission]:
    protocol_for(profile)
    subs = []
    for vid in variant_ids:
        variant = get_variant(vid)
        formats = benchmark_formats(get_source(variant.source_id).task)
        if variant.format not in formats:
            raise InvalidInputError(f"No runner can benchmark {variant.format} variants of this model yet; pick one "
                                    f"of the formats {', '.join(formats)}.")
        if reference_variant(variant.source_id) is None:
            raise InvalidInputError("This model has no Hugging Face (safetensors) form to serve as the baseline; "
                                    "convert it with 'GGUF → Hugging Face safetensors' first.")
        subs.append(jobs.submit("benchmark", {"variant_id": vid, "profile": profile},
                                title=f"Benchmark {variant.label} ({profile})", source_id=variant.source_id,
                                input_variant_id=vid, submitted_by=submitted_by))
    return subs


def _eval_ids(ctx: JobContext, source_id: str, reference: Variant) -> list[int]:
    """The eval text tokenized once with the source's tokenizer, cached in the data root."""
    cache = config.data_root() / "bench" / source_id / "eval_ids.json"
    if cache.exists():
        return json.loads(cache.read_text())
    runner = open_runner("hf", main_file(reference))
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


def run_measure(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """bench.measure in a fresh process (so its memory figures are the model's own)."""
    spec_path, out_path = ctx.work_dir / "measure_spec.json", ctx.work_dir / "measure_out.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "bench.measure", str(spec_path), str(out_path)],
                          cwd=config.PROJECT_DIR, env=child_environment(), capture_output=True, text=True,
                          preexec_fn=die_with_parent, timeout=3600, check=False)
    if proc.returncode < 0:  # killed by a signal: the job reports a crash of this runner, not a failure
        ctx.log(proc.stderr[-4000:])
        raise subprocess.CalledProcessError(proc.returncode, [f"the {spec['format']} speed runner"],
                                            output=proc.stderr[-4000:])
    if proc.returncode != 0:
        ctx.log(proc.stderr[-4000:])
        raise InvalidInputError(f"The runner process failed while measuring speed (exit {proc.returncode}); "
                                "see the log below.")
    return json.loads(out_path.read_text())


def _window_logits(fmt: str, path, ids: list[int], windows: list[tuple[int, int]]) -> tuple[list[np.ndarray], Any]:
    runner = open_runner(fmt, path, n_ctx=1024)
    return [runner.logits(ids[s:e]) for s, e in windows], runner


def run_benchmark_job(ctx: JobContext) -> dict[str, Any]:
    recipe = ctx.job.recipe
    variant = get_variant(recipe["variant_id"])
    task = get_source(variant.source_id).task
    reference = reference_variant(variant.source_id)
    if reference is None:
        raise InvalidInputError("This model has no Hugging Face (safetensors) form to serve as the baseline; "
                                "convert it first.")
    if task in TENSOR_TASKS:
        from bench.tensor_job import run_tensor_benchmark

        return run_tensor_benchmark(ctx, variant, reference, protocol_for(recipe["profile"], task))
    protocol = protocol_for(recipe["profile"])
    assert isinstance(protocol, CausalLMProtocol)
    ctx.progress(0.05, "tokenizing the eval text with the source tokenizer")
    ids = _eval_ids(ctx, variant.source_id, reference)

    cpu_before = psutil.cpu_percent(interval=1.0)
    load_before = os.getloadavg()
    ctx.progress(0.15, f"measuring speed and memory ({protocol.repetitions} runs) in a fresh process")
    speed = _speed(ctx, variant, protocol, ids)
    load_after = os.getloadavg()

    ctx.progress(0.55, "quality: reference logits")
    windows = protocol.windows(len(ids))
    ref_logits, ref_runner = _window_logits("hf", main_file(reference), ids, windows)
    ref_runner.close()
    ctx.progress(0.75, "quality: variant logits and generations")
    var_logits, runner = _window_logits(variant.format, main_file(variant), ids, windows)
    quality = causal_lm_quality(ids, windows, var_logits, ref_logits)
    if "nonfinite_share" not in quality:
        ctx.progress(0.85, "quality: llama.cpp-compatible perplexity with the variant's own tokenizer")
        quality |= llamacpp_perplexity(runner.tokenize, runner.logits, EVAL_TEXT.read_text(),
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
    flags = ["machine_loaded"] if busy or cpu_before > LOADED_CPU_PERCENT else []
    if "nonfinite_share" in quality:
        flags.append(NONFINITE_FLAG)
    if decode_cv > UNSTEADY_CV:
        flags.append("unsteady")
    fp = fingerprint(protocol.threads, runtime)
    raw = {"speed": speed, "generations": generations, "windows": windows, "eval_tokens": len(ids),
           "protocol": protocol.__dict__ | {"id": protocol.id}, "cpu_percent_before": cpu_before,
           "loadavg_before": load_before, "loadavg_after": load_after, "reference_variant": reference.id}
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
