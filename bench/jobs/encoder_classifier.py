"""The benchmark job of encoders and image classifiers: latency and memory of one fixed batch in a
fresh process, then quality over held-out inputs against the source's FP32 PyTorch form.

Quality, per task (the reference is the source run in PyTorch FP32 on the same inputs):
- classifier: top-1 agreement with the reference, accuracy on the digits labels (and the
  reference's accuracy beside it), maximum absolute error of the class probabilities;
  retention = accuracy / reference accuracy.
- encoder: cosine similarity of the mean-pooled sentence embeddings (mean and minimum), maximum
  absolute error of the embeddings; retention = mean cosine. Random-weight encoders get
  "agreement with FP32" only: no accuracy is claimed without labels.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from backends.encoder_classifier_quality import compare, cosine, eval_feeds, predict
from backends.registry import fingerprint_fields, get_format, main_file, protocol_changes
from backends.smoke import cached_outputs
from bench.fingerprint import fingerprint, fingerprint_id
from bench.jobs.common import machine_load, run_measure
from bench.metrics import nonfinite_sentence, nonfinite_share, summary
from bench.protocol import TensorProtocol, protocol_for
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.results import NONFINITE_FLAG
from worker.context import JobContext
from workloads.datasets import digits, eval_sentences
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, all_finite, softmax


def _folder(variant: Variant) -> Path:
    path = main_file(variant)
    return path.parent if path.is_file() else path


def protocol_of(fmt: str, task: str, profile: str) -> TensorProtocol:
    """The task's protocol as a format's runners run it (its toolkit's protocol changes applied)."""
    protocol = protocol_for(profile, task)
    assert isinstance(protocol, TensorProtocol)
    return replace(protocol, **protocol_changes(fmt, task, profile))


def held_out_feeds(protocol: TensorProtocol, reference: Variant) -> dict[str, np.ndarray]:
    """The protocol's held-out inputs (its latency batch is their first batch_size rows)."""
    if protocol.task == CLASSIFIER_TASK:
        n = protocol.eval_samples or len(digits().test_images)
    else:
        n = protocol.eval_samples or len(eval_sentences())
    return eval_feeds(protocol.task, _folder(reference), n, protocol.seq_len)


def reference_outputs(reference: Variant, protocol: TensorProtocol, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The reference's outputs on the held-out inputs: the same for every variant of the source and
    for a device run's import, so computed once and kept with the reference's other outputs."""
    probe = {"probe": "tensor_reference", "task": protocol.task, "inputs": {k: digest_of(v) for k, v in feeds.items()},
             "threads": protocol.threads, "runtime": get_format(reference.format).runtime_versions()}
    return cached_outputs(reference, probe, lambda: {"outputs": predict(
        reference.format, _folder(reference), protocol.task, feeds, threads=protocol.threads)})["outputs"]


def digest_of(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes() + str((array.dtype, array.shape)).encode()).hexdigest()[:16]


def quality(task: str, expected: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """Quality figures; with NaN or infinite outputs on either side, only the share of inputs that
    had them: an argmax over NaN is class 0, so accuracy and a retention of 1.0 would be made up."""
    if not (all_finite(expected) and all_finite(got)):
        return {"nonfinite_share": nonfinite_share(got), "reference_nonfinite_share": nonfinite_share(expected),
                "scored_samples": len(got)}
    if task == CLASSIFIER_TASK:
        labels = digits().test_labels[: len(got)]
        accuracy = float((got.argmax(-1) == labels).mean())
        reference_accuracy = float((expected.argmax(-1) == labels).mean())
        return {"accuracy": accuracy, "reference_accuracy": reference_accuracy,
                "top1_agreement": compare(task, expected, got)["score"],
                "max_abs_error": float(np.abs(softmax(expected) - softmax(got)).max()),
                "quality_retention": accuracy / reference_accuracy if reference_accuracy else None,
                "scored_samples": len(got)}
    figures = compare(task, expected, got)
    return {"cosine_mean": figures["score"], "cosine_min": figures["cosine_min"],
            "max_abs_error": figures["max_abs_error"], "quality_retention": figures["score"],
            "scored_samples": len(got)}


def run_encoder_classifier_benchmark(ctx: JobContext, variant: Variant, reference: Variant,
                                      protocol: TensorProtocol,
                                      runtime_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """runtime_options: the benchmark options of the variant's runner away from their default
    (registry.runtime_options_for); they go to the runner and into the fingerprint."""
    runtime_options = runtime_options or {}
    feeds = held_out_feeds(protocol, reference)
    batch = {k: v[: protocol.batch_size] for k, v in feeds.items()}
    batch_file = ctx.work_dir / "batch.npz"
    np.savez(batch_file, **batch)
    before = machine_load()
    ctx.progress(0.15, f"measuring latency ({protocol.repetitions} batches of {protocol.batch_size}) in a fresh "
                       "process")
    speed = run_measure(ctx, {"kind": "encoder_classifier", "format": variant.format, "path": str(main_file(variant)),
                              "task": protocol.task, "threads": protocol.threads, "batch_file": str(batch_file),
                              "warmup": protocol.warmup, "repetitions": protocol.repetitions,
                              "runtime_options": runtime_options})
    load_after = os.getloadavg()
    ctx.progress(0.6, f"quality: reference outputs on {len(next(iter(feeds.values())))} held-out inputs")
    expected = reference_outputs(reference, protocol, feeds)
    ctx.progress(0.8, "quality: the variant's outputs")
    # with the speed run's options: a QDQ model timed on the CPU EP is scored on the CPU EP too
    got = predict(variant.format, main_file(variant), protocol.task, feeds, threads=protocol.threads,
                  runtime_options=runtime_options)
    metrics = metrics_of(variant, protocol, speed, expected, got)
    flags = before.flags()
    if "nonfinite_share" in metrics:
        flags.append(NONFINITE_FLAG)
    fp = fingerprint(protocol.threads, speed["runtime"], device=speed.get("device"), runtime_options=runtime_options,
                     runner_fields=fingerprint_fields(variant.format))
    raw = {"speed": speed, "protocol": protocol.__dict__ | {"id": protocol.id}, "runtime_options": runtime_options,
           "cpu_percent_before": before.cpu_percent, "loadavg_before": before.loadavg, "loadavg_after": load_after,
           "reference_variant": reference.id, "examples": _examples(protocol.task, expected, got)}
    rid = ctx.record_result(variant_id=variant.id, source_id=variant.source_id,
                            protocol_id=protocol.id, profile=protocol.profile, runtime=speed["runtime"],
                            fingerprint_id=fingerprint_id(fp), fingerprint=fp, metrics=metrics, raw=raw,
                            toolkit_versions=speed["versions"], flags=flags)
    if NONFINITE_FLAG in flags:
        raise InvalidInputError(nonfinite_sentence(variant, reference, metrics, "of the held-out inputs"))
    ctx.log(f"latency p50 {metrics['latency_ms_p50']:.2f} ms per batch of {protocol.batch_size}; retention "
            f"{metrics['quality_retention']:.4f}")
    return {"result_id": rid, "latency_ms_p50": metrics["latency_ms_p50"],
            "quality_retention": metrics["quality_retention"]}


def metrics_of(variant: Variant, protocol: TensorProtocol, speed: dict[str, Any], expected: np.ndarray | None,
               got: np.ndarray | None) -> dict[str, Any]:
    """A result's figures from a speed run's raw output (bench.measure's, or a device run's) and the
    variant's and reference's outputs on the held-out inputs (None: speed only)."""
    latencies_ms = [1000 * t for t in speed["latencies_s"]]
    lat = summary(latencies_ms)
    return {
        "size_mb": variant.size_bytes / 2**20,
        "load_s": speed["load_s"],
        **{f"latency_ms_{k}": v for k, v in lat.items()},
        "latency_ms_p99": float(np.percentile(latencies_ms, 99)),
        **_throughput(speed, protocol.batch_size, lat["mean"]),
        "peak_rss_mb": speed["peak_rss"] / 2**20,
        "memory_rise_mb": speed["memory_rise"] / 2**20,
        **(quality(protocol.task, expected, got) if expected is not None and got is not None else {}),
    }


def _throughput(speed: dict[str, Any], batch_size: int, mean_latency_ms: float) -> dict[str, Any]:
    """Inputs per second. One request at a time (every runtime by default): the batch size over the
    mean latency. A runner compiled for throughput (OpenVINO's THROUGHPUT hint) was also timed with
    several requests in flight, and that is its throughput; the single-request figure stays beside it."""
    single = batch_size / (mean_latency_ms / 1000)
    parallel = speed.get("parallel")
    if not parallel:
        return {"throughput_per_s": single}
    return {"throughput_per_s": batch_size * parallel["batches"] / parallel["seconds"],
            "throughput_single_request_per_s": single, "infer_requests": parallel["requests"]}


def _examples(task: str, expected: np.ndarray, got: np.ndarray, n: int = 12) -> list[dict[str, Any]]:
    """A few held-out inputs with both answers, shown on the Benchmarks page."""
    if task == CLASSIFIER_TASK:
        labels = digits().test_labels
        return [{"input": f"test image {i}", "label": int(labels[i]), "reference": int(expected[i].argmax()),
                 "variant": int(got[i].argmax())} for i in range(min(n, len(got)))]
    cos = cosine(expected[:n], got[:n])
    return [{"input": eval_sentences()[i][:120], "cosine": round(float(cos[i]), 5)} for i in range(min(n, len(got)))]
