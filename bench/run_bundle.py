"""Run a Model Catalog device bundle on this machine: `python run_bundle.py [--models DIR] [--out result.json]`.

Copied into every bundle (bench.device_bundle). It needs the standard library and each variant's
runtime package only (with the numpy every runtime brings): it never imports the catalog. It
checks every file's sha256 (a changed or missing file stops it before anything runs), runs each
variant in a process of its own (so the memory figures are the model's) with the runner script
its format's toolkit declared (runners/<format>.py) through the catalog's protocol, and writes
result.json: the raw runner output and this machine's description. The figures are computed again
from the raw output when the result is imported.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_KIND = "model-catalog device run result"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder(variant: dict[str, Any], models: Path | None) -> Path:
    return (models / variant["id"]) if models and (models / variant["id"]).is_dir() else models or \
        HERE / "files" / variant["id"]


def check_files(variant: dict[str, Any], models: Path | None) -> Path:
    """The variant's folder, every file in it checked against the manifest's sha256."""
    folder = _folder(variant, models)
    for f in variant["files"]:
        path = folder / f["relpath"]
        if not path.is_file():
            raise SystemExit(f"error: {path} is missing; give the folder holding {variant['label']}'s files "
                             "with --models DIR.")
        if _sha256(path) != f["sha256"]:
            raise SystemExit(f"error: {path} does not match the bundle (its sha256 differs): the file was changed "
                             "or is another model; nothing was run.")
    return folder


def _cpu() -> str:
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  check=False).stdout.strip() or platform.machine()
        except OSError:
            return platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict[str, Any]:
    return {"cpu": _cpu(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
            "python": platform.python_version(), "node": platform.node()}


def _max_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kilobytes on Linux


def run_speed(runner: Any, main: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """The catalog's speed protocol (bench/measure.py) over a runner with the catalog's runner
    interface: prefill of the prompt from an empty cache, then greedy decode from its first token."""
    ids = workload["prompt_ids"]
    t = time.perf_counter()
    model = runner.load(main, threads=protocol["threads"], all_logits=False,
                        n_ctx=max(1024, protocol["prompt_tokens"] + protocol["gen_tokens"] + 8))
    load_s = time.perf_counter() - t
    runs = []
    for rep in range(protocol["warmup"] + protocol["repetitions"]):
        ttft, _ = model.timed_generation(ids, 1)
        _, steps = model.timed_generation(ids[:1], protocol["gen_tokens"] + 1)
        if rep >= protocol["warmup"]:
            runs.append({"ttft_s": ttft, "prefill_tps": len(ids) / ttft,
                         "decode_tps": len(steps) / sum(steps) if steps else 0.0, "token_s": steps})
    device = model.device() if hasattr(model, "device") else {}
    out = {"runtime": model.runtime, "target": device.get("target") or model.runtime, "load_s": load_s,
           "runs": runs, "versions": model.versions(), "device": device}
    model.close()
    return out


def run_quality(runner: Any, main: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """Per-window negative log-likelihoods of the evaluation ids from the runner's logits at every
    position (position i of a window predicts token i+1), and the protocol's greedy generations."""
    import numpy as np  # every runtime package brings numpy

    ids = workload["eval_ids"]
    model = runner.load(main, threads=protocol["threads"], n_ctx=1024, all_logits=True)
    window_nll = []
    for start, end in workload["windows"]:
        logits = np.asarray(model.logits(ids[start:end])[: end - start - 1], dtype=np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        lp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        targets = np.array(ids[start + 1:end])
        window_nll.append([float(-lp[np.arange(len(targets)), targets].sum()), len(targets)])
    generations = [{"prompt": p, "text": model.generate(p, protocol["generation_tokens"])}
                   for p in workload["gen_prompts"]]
    model.close()
    return {"window_nll": window_nll, "generations": generations}


def _inputs(workload: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    with np.load(HERE / workload["inputs"], allow_pickle=False) as data:  # arrays only, never a pickle
        return {k: data[k] for k in data.files}


def run_tensor_speed(runner: Any, main: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """The catalog's encoder/classifier speed protocol (bench/measure.py): the latency of one fixed
    batch (the first batch_size held-out inputs), one request at a time."""
    batch = {k: v[: protocol["batch_size"]] for k, v in _inputs(workload).items()}
    t = time.perf_counter()
    model = runner.load(main, protocol["task"], protocol["threads"])
    load_s = time.perf_counter() - t
    latencies = []
    for rep in range(protocol["warmup"] + protocol["repetitions"]):
        t = time.perf_counter()
        model.raw(batch)
        if rep >= protocol["warmup"]:
            latencies.append(time.perf_counter() - t)
    device = model.device() if hasattr(model, "device") else {}
    out = {"runtime": model.runtime, "target": model.runtime, "load_s": load_s, "latencies_s": latencies,
           "batch_size": protocol["batch_size"], "versions": model.versions(), "device": device}
    model.close()
    return out


def run_tensor_outputs(runner: Any, main: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """The model's outputs on the held-out inputs, as the catalog's quality runs make them (batches
    of output_batch; an encoder's hidden states mean-pooled over real tokens), scored at import."""
    import numpy as np

    feeds = _inputs(workload)
    n = min(protocol["eval_samples"] or workload["samples"], workload["samples"])  # fewer inputs than asked: all
    step = workload["output_batch"]
    model = runner.load(main, protocol["task"], protocol["threads"])
    parts = []
    for i in range(0, n, step):
        chunk = {k: v[i:min(i + step, n)] for k, v in feeds.items()}
        raw = np.asarray(model.raw(chunk), dtype=np.float32)
        if workload["pooling"] == "mean":  # sentence embeddings as sentence-transformers makes them
            mask = chunk["attention_mask"][..., None].astype(np.float32)
            raw = (raw * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        parts.append(raw)
    model.close()
    return {"outputs": np.concatenate(parts).tolist()}


def run_one(manifest: dict[str, Any], variant: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One variant, in this process: the runner's raw output and its memory figures. A runner
    script has import_runtime() and the catalog's runner interface for the bundle's protocol:
    load(path, threads, n_ctx, all_logits) giving timed_generation, logits, generate, versions and
    close (text generation), or load(path, task, threads) giving raw(feeds), versions and close
    (encoders and classifiers, whose variants each name their protocol)."""
    spec = importlib.util.spec_from_file_location(f"bundle_runner_{variant['format']}", HERE / variant["runner"])
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    runner.import_runtime()
    rss_runtime = _max_rss()
    main = folder if variant["main"] == "." else folder / variant["main"]
    tensor = "inputs" in manifest["workload"]
    protocol = variant.get("protocol") or manifest["protocol"]
    raw = (run_tensor_speed if tensor else run_speed)(runner, main, protocol, manifest["workload"])
    peak = _max_rss()  # the speed runs' peak, as the catalog measures it: quality keeps every output
    raw |= {"peak_rss": peak, "rss_after_runtime_import": rss_runtime, "memory_rise": peak - rss_runtime}
    return raw | (run_tensor_outputs if tensor else run_quality)(runner, main, protocol, manifest["workload"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=Path, help="the folder holding the variants' files (default: the bundle's files/)")
    p.add_argument("--out", type=Path, default=Path("result.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child process: run this variant, write its raw output
    args = p.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text())
    for key, value in manifest.get("environment", {}).items():  # before any runtime is imported
        os.environ.setdefault(str(key), str(value))
    by_id = {v["id"]: v for v in manifest["variants"]}
    if args.one:
        variant = by_id[args.one]
        args.out.write_text(json.dumps(run_one(manifest, variant, _folder(variant, args.models))))
        return 0
    for variant in manifest["variants"]:  # every hash before anything runs
        check_files(variant, args.models)
    started, t0 = datetime.now(timezone.utc).isoformat(), time.perf_counter()  # noqa: UP017 (Python 3.10)
    out = []
    for variant in manifest["variants"]:
        print(f"running {variant['label']} ({variant['runtime']}) ...", file=sys.stderr, flush=True)
        part = args.out.with_name(f".{variant['id']}.raw.json")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", variant["id"], "--out", str(part)]
        if args.models:
            cmd += ["--models", str(args.models)]
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"error: the {variant['runtime']} runner failed on {variant['label']} "
                             f"(exit {proc.returncode}); see its output above.")
        raw = json.loads(part.read_text())
        part.unlink()
        out.append({"id": variant["id"], "label": variant["label"], "format": variant["format"],
                    "files": [{"relpath": f["relpath"], "sha256": f["sha256"]} for f in variant["files"]],
                    "raw": raw, "made_for": variant.get("made_for") or {}}
                   | ({"protocol": variant["protocol"]} if "protocol" in variant else {}))
    result = {"kind": RESULT_KIND, "bundle_version": manifest["bundle_version"], "protocol": manifest["protocol"],
              "source_id": manifest["source_id"], "machine": machine(), "started_at": started,
              "seconds": round(time.perf_counter() - t0, 2), "variants": out}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} ({len(out)} variant(s), {result['seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
