"""A device run's result.json (written by a bundle's run_bundle.py), checked and turned into
imported results: one per variant, of the bundle's protocol, flagged as a device run of the
machine it names. Every figure is computed here from the raw runner output; a result that claims
a figure its raw output does not give is refused, as are unknown variants, changed files and
another protocol or bundle version."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np

from bench.metrics import cv, summary
from bench.protocol import protocol_for
from bench.upstream_reports import IMPORTED_FLAG, ImportedResult
from catalog import variants
from catalog.errors import InvalidInputError, NotFoundError
from catalog.results import NONFINITE_FLAG

DEVICE_RESULT_KIND = "model-catalog device run result"
DEVICE_FLAG = "device_run"
BUNDLE_VERSION = 1
QUALITY_KEYS = ("perplexity", "top1_agreement", "kl_mean", "quality_retention", "llamacpp_perplexity",
                "cosine_mean", "accuracy")
UNSTEADY_CV = 0.05  # as bench.jobs.causal_lm flags a result of this machine


def _runtime_device(described: Any) -> dict[str, str]:
    """The device the runtime itself reported (MLX: gpu with Metal on a Mac; OpenVINO: its device
    name), as the catalog's own results record it; only short strings are kept."""
    if not isinstance(described, dict):
        return {}
    return {str(k)[:40]: str(v)[:200] for k, v in list(described.items())[:20]
            if isinstance(v, str | int | float | bool)}


def _protocol(claimed: Any) -> Any:
    if not isinstance(claimed, dict) or "id" not in claimed or "profile" not in claimed:
        raise InvalidInputError("This device result does not state the protocol it ran.")
    try:
        current = protocol_for(str(claimed["profile"]), claimed.get("task") or "text-generation")
    except ValueError:
        raise InvalidInputError(f"This device result ran an unknown profile {claimed['profile']!r}.") from None
    fields = json.loads(json.dumps(asdict(current)))
    if claimed["id"] != current.id or {k: claimed.get(k) for k in fields} != fields:
        raise InvalidInputError(
            f"This device result ran protocol {claimed['id']} (version {claimed.get('version', '?')}); this catalog's "
            f"{current.profile} protocol is now {current.id} (version {current.version}): make a new bundle and "
            "run it again.")
    return current


def _numbers(values: Any, what: str, label: str) -> list[float]:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values):
        raise InvalidInputError(f"This device result's {what} for {label} is missing or not a list of numbers.")
    return [float(v) for v in values]


def _metrics(entry: dict[str, Any], variant: Any, label: str) -> dict[str, Any]:
    raw = entry.get("raw")
    if not isinstance(raw, dict):
        raise InvalidInputError(f"This device result has no raw runner output for {label}.")
    runs = raw.get("runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise InvalidInputError(f"This device result has no speed runs for {label}.")
    decode = _numbers([r.get("decode_tps") for r in runs], "decode tokens/s", label)
    prefill = _numbers([r.get("prefill_tps") for r in runs], "prefill tokens/s", label)
    ttft = _numbers([r.get("ttft_s") for r in runs], "time to first token", label)
    steps = _numbers([t for r in runs for t in (r.get("token_s") or [])], "per-token times", label)
    memory = {k: raw.get(k) for k in ("peak_rss", "memory_rise", "load_s")}
    metrics: dict[str, Any] = {
        "size_mb": variant.size_bytes / 2**20,
        "ttft_s": summary(ttft)["mean"],
        **{f"prefill_tps_{k}": v for k, v in summary(prefill).items()},
        **{f"decode_tps_{k}": v for k, v in summary(decode).items()},
        "token_latency_ms_p50": 1000 * float(np.percentile(steps, 50)),
        "token_latency_ms_p90": 1000 * float(np.percentile(steps, 90)),
        "decode_tps_cv": cv(decode), "repetitions_kept": len(runs),
    }
    for key, value in memory.items():
        if isinstance(value, int | float) and math.isfinite(value):
            metrics["load_s" if key == "load_s" else f"{key}_mb"] = value if key == "load_s" else value / 2**20
    claimed = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    nll = raw.get("window_nll")
    if nll is None:
        quality = sorted(k for k in claimed if k in QUALITY_KEYS)
        if quality:
            raise InvalidInputError(f"This device result claims {', '.join(quality)} for {label} with no raw output "
                                    "behind it (no per-window log-likelihoods); nothing was stored.")
        return metrics
    if not isinstance(nll, list) or not nll or not all(
            isinstance(w, list) and len(w) == 2 and all(isinstance(x, int | float) for x in w) and w[1] > 0
            and math.isfinite(w[0]) for w in nll):
        raise InvalidInputError(f"This device result's per-window log-likelihoods for {label} are malformed.")
    scored = int(sum(w[1] for w in nll))
    metrics |= {"perplexity": float(np.exp(sum(w[0] for w in nll) / scored)), "scored_positions": scored}
    for key, value in claimed.items():
        if key in metrics and isinstance(value, int | float) and not math.isclose(value, metrics[key], rel_tol=1e-6):
            raise InvalidInputError(f"This device result claims {key} {value} for {label}, but its raw output gives "
                                    f"{metrics[key]:.6g}; nothing was stored.")
    return metrics


def _variant_protocol(entry: dict[str, Any], variant: Any, current: Any, label: str) -> Any:
    """An encoder/classifier variant's protocol (its format's runners may change the task's), as the
    catalog runs it now; another one is refused."""
    from bench.jobs.encoder_classifier import protocol_of

    mine = protocol_of(variant.format, current.task, current.profile)
    claimed = entry.get("protocol")
    if not isinstance(claimed, dict) or claimed.get("id") != mine.id:
        raise InvalidInputError(f"This device result ran {label} under protocol "
                                f"{claimed.get('id') if isinstance(claimed, dict) else '(none stated)'}; this "
                                f"catalog runs {variant.format} {current.task} variants under {mine.id} now: make a "
                                "new bundle and run it again.")
    return mine


def _tensor_metrics(entry: dict[str, Any], variant: Any, protocol: Any, label: str) -> dict[str, Any]:
    """An encoder/classifier's figures: speed from the raw latencies, quality from the raw outputs
    on the held-out inputs, scored here against the reference's outputs on the same inputs."""
    from bench.jobs.common import reference_variant
    from bench.jobs.encoder_classifier import held_out_feeds, metrics_of, reference_outputs

    raw = entry.get("raw")
    if not isinstance(raw, dict):
        raise InvalidInputError(f"This device result has no raw runner output for {label}.")
    speed = {"latencies_s": _numbers(raw.get("latencies_s"), "latencies", label)}
    for key in ("load_s", "peak_rss", "memory_rise"):
        speed[key] = _numbers([raw.get(key)], key.replace("_", " "), label)[0]
    claimed = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    if raw.get("outputs") is None:
        quality = sorted(k for k in claimed if k in QUALITY_KEYS)
        if quality:
            raise InvalidInputError(f"This device result claims {', '.join(quality)} for {label} with no raw output "
                                    "behind it (no outputs on the held-out inputs); nothing was stored.")
        return metrics_of(variant, protocol, speed, None, None)
    reference = reference_variant(variant.source_id)
    if reference is None:
        raise InvalidInputError(f"{label}'s model has no reference form to score the device's outputs against.")
    feeds = held_out_feeds(protocol, reference)
    expected = reference_outputs(reference, protocol, feeds)
    try:
        got = np.asarray(raw["outputs"], dtype=np.float32)
    except (TypeError, ValueError):
        got = None
    if got is None or got.shape != expected.shape:
        raise InvalidInputError(f"This device result's outputs for {label} are malformed (expected "
                                f"{expected.shape[0]} rows of {expected.shape[-1]} numbers); nothing was stored.")
    return metrics_of(variant, protocol, speed, expected, got)


def _kept(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw output as stored: an encoder's outputs on the held-out inputs (up to megabytes) were
    scored at import; their shape stays."""
    if not isinstance(raw.get("outputs"), list):
        return raw
    return {k: v for k, v in raw.items() if k != "outputs"} | {
        "outputs_scored": [len(raw["outputs"]), len(raw["outputs"][0]) if raw["outputs"] else 0]}


def _machine(data: dict[str, Any]) -> dict[str, Any]:
    machine = data.get("machine")
    if not isinstance(machine, dict) or not machine.get("cpu"):
        raise InvalidInputError("This device result does not describe the machine that ran it.")
    return machine


def machine_label(machine: dict[str, Any]) -> str:
    memory = f"{machine['memory_gb']:g} GB" if isinstance(machine.get("memory_gb"), int | float) else ""
    return " · ".join(str(p) for p in (machine.get("cpu"), machine.get("os"), memory) if p)


def from_device_result(data: dict[str, Any]) -> list[ImportedResult]:
    """The device run as imported results, one per variant; one sentence if any part is refused."""
    if data.get("bundle_version") != BUNDLE_VERSION:
        raise InvalidInputError(f"This device result comes from bundle version {data.get('bundle_version')!r}; this "
                                f"catalog reads version {BUNDLE_VERSION}: make a new bundle.")
    protocol = _protocol(data.get("protocol"))
    machine = _machine(data)
    entries = data.get("variants")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise InvalidInputError("This device result holds no variant results.")
    label = machine_label(machine)
    out = []
    for entry in entries:
        vid = str(entry.get("id", ""))
        try:
            variant = variants.get_variant(vid)
        except NotFoundError:
            raise InvalidInputError(f"This device result is for variant {vid or '(unnamed)'}, which this catalog "
                                    "does not hold.") from None
        stored = {f.relpath: f.sha256 for f in variant.files}
        ran = {f.get("relpath"): f.get("sha256") for f in entry.get("files") or [] if isinstance(f, dict)}
        if ran != stored:
            changed = sorted(set(stored) ^ set(ran) | {k for k in stored if ran.get(k) != stored[k]})
            raise InvalidInputError(f"The device ran other files than variant {vid} holds ({', '.join(changed)} "
                                    "differs by its sha256); nothing was stored.")
        if protocol.task == "text-generation":
            metrics = _metrics(entry, variant, variant.label)
            ran = protocol
        else:
            ran = _variant_protocol(entry, variant, protocol, variant.label)
            metrics = _tensor_metrics(entry, variant, ran, variant.label)
        raw = entry["raw"]
        fp = {"cpu": machine.get("cpu"), "cpu_flags_sha": "", "cores": machine.get("cores"),
              "threads": ran.threads, "memory_gb": machine.get("memory_gb"), "os": machine.get("os"),
              "python": machine.get("python"), "target": str(raw.get("target") or raw.get("runtime") or ""),
              "machine": label, "device": machine, "runtime_device": _runtime_device(raw.get("device")),
              "made_for": _runtime_device(entry.get("made_for"))}
        # unsteady: as the catalog flags its own LLM results (its tensor results carry the machine's load)
        flags = [IMPORTED_FLAG, DEVICE_FLAG] + (["unsteady"] if metrics.get("decode_tps_cv", 0.0) > UNSTEADY_CV else [])
        if "nonfinite_share" in metrics:  # NaN outputs on the device: charted as failed, as the catalog's own
            flags.append(NONFINITE_FLAG)
        out.append(ImportedResult(
            variant=variant, protocol_id=ran.id, profile=ran.profile,
            runtime=str(raw.get("target") or raw.get("runtime") or "device"), fingerprint=fp, metrics=metrics,
            raw={"device_run": _kept(raw), "machine": machine, "started_at": data.get("started_at"),
                 "seconds": data.get("seconds"), "protocol": entry.get("protocol") or data["protocol"]},
            toolkit_versions={str(k): str(v) for k, v in (raw.get("versions") or {}).items()}, flags=flags))
    return out
