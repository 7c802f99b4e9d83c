"""The smoke test after every conversion, one framework for every toolkit: run the result and
its parent on the same fixed inputs, compare, and hold the figure against the conversion's
`Gate`. A result below its gate, one that does not load, or one with NaN outputs is not published.

Two probes, by the source's task:
- text generation: greedy continuations of fixed prompts, and top-1 agreement of next-token
  predictions on the same token ids (the parent fixes the ids);
- encoders and classifiers: held-out inputs; a classifier's top-1 agreement, an encoder's mean
  cosine similarity of sentence embeddings ("output_agreement" in both cases).

The parent's side depends only on the parent and the fixed inputs, so it is computed once per
parent and kept in the data root's cache (smoke/<parent id>/), not again for each quant of a batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backends.encoder_classifier_quality import compare, eval_feeds, predict
from backends.registry import Gate, get_format, open_runner
from catalog import config
from catalog.errors import InvalidInputError
from catalog.records import Variant
from worker.context import JobContext
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, ENCODER_CLASSIFIER_TASKS, all_finite
from workloads.prompts import PROMPTS

log = logging.getLogger(__name__)

GEN_TOKENS = 24
SAMPLES = 64
CACHE_VERSION = 1  # bump when what a parent's cached side holds changes


class SmokeTestFailed(InvalidInputError):
    """The converted model loads badly or disagrees with its parent; no variant is created."""


def run_smoke(ctx: JobContext, gate: Gate, parent: Variant, parent_path: Path, out_dir: Path, output_format: str,
              task: str | None) -> dict[str, Any]:
    """The smoke figures of the conversion's output in out_dir; SmokeTestFailed below the gate."""
    fmt = get_format(output_format)
    relpaths = [str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()]
    child_path = fmt.main_file(out_dir, relpaths)
    if task in ENCODER_CLASSIFIER_TASKS:
        return _encoder_classifier(ctx, gate, task, parent, parent_path, output_format, child_path)
    return _causal_lm(ctx, gate, parent, parent_path, output_format, child_path)


# ------------------------------------------------------------------------------ the parent's side, once


def cached_outputs(parent: Variant, probe: dict[str, Any], compute: Callable[[], dict[str, np.ndarray]]
                   ) -> dict[str, np.ndarray]:
    """A variant's outputs on fixed inputs (the parent's side of a smoke probe, a benchmark
    reference's logits), read from the cache or computed and kept (atomically: two jobs of one
    batch may compute them at once, and either copy is the same)."""
    key = hashlib.sha256(json.dumps(dict(probe, v=CACHE_VERSION), sort_keys=True).encode()).hexdigest()[:16]
    path = config.smoke_cache_dir(parent.id) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {k: stored[k] for k in stored.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # none yet, or a copy cut short (a full disk, a killed job): computed again
    arrays = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{key}.{os.getpid()}.npz")
        np.savez(partial, **arrays)
        partial.replace(path)
    except OSError as exc:  # a cache that cannot be written only costs time
        log.warning("could not keep the outputs of %s at %s: %s", parent.id, path, exc)
    return arrays


# ------------------------------------------------------------------------------ text generation


def _predictions(fmt: str, path: Path, prompts: tuple[str, ...], sequences: list[list[int]] | None
                 ) -> tuple[list[list[int]], list[np.ndarray], list[str], dict[str, str]]:
    # One thread: the work is tiny, and conversions share the cores (2 threads measured 3-4x slower).
    runner = open_runner(fmt, path, threads=1)
    try:
        generations = [runner.generate(p, GEN_TOKENS) for p in prompts]
        if sequences is None:  # the parent fixes the token ids both sides are scored on
            sequences = [runner.tokenize(p + g) for p, g in zip(prompts, generations, strict=True)]
        logits = [runner.logits(ids) for ids in sequences]
        versions = runner.versions()
    finally:
        runner.close()
    return sequences, logits, generations, versions


def _parent_predictions(parent: Variant, parent_path: Path) -> tuple[list[list[int]], list[np.ndarray], list[str]]:
    def compute() -> dict[str, np.ndarray]:
        sequences, logits, generations, _ = _predictions(parent.format, parent_path, PROMPTS, None)
        arrays = {f"ids_{i}": np.asarray(s, dtype=np.int64) for i, s in enumerate(sequences)}
        arrays |= {f"logits_{i}": np.asarray(lg, dtype=np.float32) for i, lg in enumerate(logits)}
        arrays["generations"] = np.asarray(generations, dtype=str)
        return arrays

    probe = {"probe": "causal-lm", "prompts": PROMPTS, "gen_tokens": GEN_TOKENS, "format": parent.format,
             "runtime": get_format(parent.format).runtime_versions()}
    arrays = cached_outputs(parent, probe, compute)
    n = len(PROMPTS)
    return ([arrays[f"ids_{i}"].tolist() for i in range(n)], [arrays[f"logits_{i}"] for i in range(n)],
            [str(g) for g in arrays["generations"]])


def _causal_lm(ctx: JobContext, gate: Gate, parent: Variant, parent_path: Path, child_format: str,
               child_path: Path) -> dict[str, Any]:
    ctx.progress(0.75, f"smoke test: running the parent {parent_path.name}")
    sequences, parent_logits, parent_gen = _parent_predictions(parent, parent_path)
    ctx.progress(0.82, f"smoke test: loading {child_path.name}")
    try:
        _, child_logits, child_gen, _ = _predictions(child_format, child_path, PROMPTS, sequences)
    except (ValueError, RuntimeError, OSError) as exc:
        raise SmokeTestFailed(f"The converted model does not load ({type(exc).__name__}: {str(exc)[:120]}); "
                              "it was not published.") from exc
    if not all(all_finite(lg) for lg in child_logits):
        raise SmokeTestFailed("The converted model produces NaN or infinite logits; it was not published.")
    if all(not g.strip() for g in child_gen):
        raise SmokeTestFailed("The converted model generates only empty text; it was not published.")
    same = total = 0
    for p, c in zip(parent_logits, child_logits, strict=True):
        n = min(len(p), len(c))
        same += int((p[:n].argmax(-1) == c[:n].argmax(-1)).sum())
        total += n
    agreement = same / max(total, 1)
    greedy_same = sum(a == b for a, b in zip(parent_gen, child_gen, strict=True))
    ctx.log(f"smoke test: top-1 agreement {agreement:.3f} over {total} positions; "
            f"{greedy_same}/{len(PROMPTS)} greedy continuations identical")
    result = {"top1_agreement": round(agreement, 4), "positions": total, "min_agreement": gate.minimum,
              "identical_continuations": greedy_same,
              "generations": [{"prompt": p, "parent": a, "variant": b}
                              for p, a, b in zip(PROMPTS, parent_gen, child_gen, strict=True)]}
    if not gate.passes(agreement):
        raise SmokeTestFailed(
            f"The result agrees with its parent on {agreement:.0%} of next tokens, below the {gate.minimum:.0%} "
            f"this precision must reach; {gate.hint or 'try a higher-bit type or an importance matrix'}.")
    return result


# ------------------------------------------------------------------------------ encoders and classifiers


def _encoder_classifier(ctx: JobContext, gate: Gate, task: str, parent: Variant, parent_path: Path,
                        child_format: str, child_path: Path) -> dict[str, Any]:
    tokenizer_folder = child_path.parent if child_path.is_file() else child_path
    samples = gate.samples or SAMPLES
    feeds = eval_feeds(task, tokenizer_folder, samples)
    ctx.progress(0.75, f"smoke test: running the parent {parent_path.name}")
    probe = {"probe": task, "samples": samples, "format": parent.format,
             "runtime": get_format(parent.format).runtime_versions(),
             "feeds": hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in feeds.values())).hexdigest()}
    expected = cached_outputs(parent, probe,
                              lambda: {"outputs": predict(parent.format, parent_path, task, feeds)})["outputs"]
    ctx.progress(0.82, f"smoke test: running {child_path.name} on {len(next(iter(feeds.values())))} held-out inputs")
    try:
        got = predict(child_format, child_path, task, feeds)
    except Exception as exc:  # runtimes raise their own exception types for unrunnable graphs
        raise SmokeTestFailed(f"The converted model does not run in {get_format(child_format).runtime} "
                              f"({type(exc).__name__}: {str(exc).strip()[:140]}); it was not published.") from exc
    if not all_finite(got):
        raise SmokeTestFailed("The converted model produces NaN or infinite outputs; it was not published.")
    figures = compare(task, expected, got)
    what = "top-1 agreement" if task == CLASSIFIER_TASK else "mean cosine similarity"
    ctx.log(f"smoke test: {what} {figures['score']:.4f} over {len(got)} held-out inputs "
            f"(max abs error {figures['max_abs_error']:.4g})")
    result = {"metric": what, **{k: round(v, 5) for k, v in figures.items()}, "samples": len(got),
              "min_score": gate.minimum}
    if not gate.passes(figures["score"]):
        hint = gate.hint or "try per-channel scales, another calibration method, or a larger block size"
        raise SmokeTestFailed(f"The result's {what} with its parent is {figures['score']:.3f}, below the "
                              f"{gate.minimum} this conversion must reach; {hint}.")
    return result
