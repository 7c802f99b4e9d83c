"""Speed and memory of one variant, measured in a fresh process:
`python -m bench.measure SPEC.json OUT.json`.

A fresh process makes the memory figures mean something: RSS is read just after importing the
runtime (before the model loads), so the rise over it is the model's own cost.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import psutil

RUNTIME_IMPORTS = {"gguf": "llama_cpp", "hf": "transformers", "onnx-genai": "onnxruntime_genai",
                   "onnx": "onnxruntime"}


def measure_tensor(spec: dict) -> dict:
    """Latency of one fixed batch (loaded from an .npz, never unpickled) for encoders and classifiers."""
    import numpy as np

    proc = psutil.Process()
    __import__(RUNTIME_IMPORTS[spec["format"]])
    if spec["format"] == "hf":
        import torch  # noqa: F401 - part of the runtime's own cost
    rss_runtime = proc.memory_info().rss
    from bench.runners.tensor import open_tensor_runner

    with np.load(spec["batch_file"], allow_pickle=False) as data:
        feeds = {k: data[k] for k in data.files}
    t = time.perf_counter()
    runner = open_tensor_runner(spec["format"], Path(spec["path"]), spec["task"], spec["threads"])
    load_s = time.perf_counter() - t
    latencies = []
    for rep in range(spec["warmup"] + spec["repetitions"]):
        t = time.perf_counter()
        runner.raw(feeds)
        if rep >= spec["warmup"]:
            latencies.append(time.perf_counter() - t)
    versions, runtime = runner.versions(), runner.runtime
    runner.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"load_s": load_s, "rss_after_runtime_import": rss_runtime, "peak_rss": peak,
            "memory_rise": peak - rss_runtime, "latencies_s": latencies,
            "batch_size": len(next(iter(feeds.values()))), "versions": versions, "runtime": runtime}


def measure(spec: dict) -> dict:
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    __import__(RUNTIME_IMPORTS[spec["format"]])
    if spec["format"] == "hf":
        import torch  # noqa: F401 - part of the runtime's own cost
    rss_runtime = proc.memory_info().rss
    from bench.runners import open_runner

    t = time.perf_counter()
    runner = open_runner(spec["format"], Path(spec["path"]), threads=spec["threads"],
                         n_ctx=max(1024, spec["prompt_tokens"] + spec["gen_tokens"] + 8), all_logits=False)
    load_s = time.perf_counter() - t
    rss_loaded = proc.memory_info().rss
    ids = spec["prompt_ids"]
    runs = []
    for rep in range(spec["warmup"] + spec["repetitions"]):
        ttft, steps = runner.timed_generation(ids, spec["gen_tokens"])
        if rep >= spec["warmup"]:
            runs.append({"ttft_s": ttft, "prefill_tps": len(ids) / ttft,
                         "decode_tps": len(steps) / sum(steps) if steps else 0.0, "token_s": steps})
    versions = runner.versions()
    runtime = runner.runtime
    runner.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"load_s": load_s, "rss_start": rss_start, "rss_after_runtime_import": rss_runtime,
            "rss_after_load": rss_loaded, "peak_rss": peak, "memory_rise": peak - rss_runtime, "runs": runs,
            "versions": versions, "runtime": runtime}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = measure_tensor(spec) if spec.get("kind") == "tensor" else measure(spec)
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
