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
from typing import Any

import psutil


def _import_runtime(spec: dict) -> None:
    """The runtime's own imports, counted apart from the model's memory."""
    for package in spec["runtime_imports"]:
        __import__(package)


def measure_encoder_classifier(spec: dict) -> dict:
    """Latency of one fixed batch (loaded from an .npz, never unpickled) for encoders and classifiers."""
    import numpy as np

    proc = psutil.Process()
    _import_runtime(spec)
    rss_runtime = proc.memory_info().rss
    from backends.registry import resolve_runner

    with np.load(spec["batch_file"], allow_pickle=False) as data:
        feeds = {k: data[k] for k in data.files}
    t = time.perf_counter()
    # Benchmark options (e.g. a performance hint) reach only a runner that declares them.
    runner = resolve_runner(spec["runner"])(Path(spec["path"]), spec["task"], spec["threads"],
                                            **spec.get("runtime_options", {}))
    load_s = time.perf_counter() - t
    latencies = []
    for rep in range(spec["warmup"] + spec["repetitions"]):
        t = time.perf_counter()
        runner.raw(feeds)
        if rep >= spec["warmup"]:
            latencies.append(time.perf_counter() - t)
    parallel = _parallel_run(runner, feeds, spec)
    versions, runtime, device = runner.versions(), runner.runtime, _device(runner)
    runner.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"load_s": load_s, "rss_after_runtime_import": rss_runtime, "peak_rss": peak,
           "memory_rise": peak - rss_runtime, "latencies_s": latencies,
           "batch_size": len(next(iter(feeds.values()))), "versions": versions, "runtime": runtime, "device": device}
    return out | ({"parallel": parallel} if parallel else {})


def _parallel_run(runner: Any, feeds: dict, spec: dict) -> dict | None:
    """Throughput with several requests in flight, for a runner compiled for it (OpenVINO's
    THROUGHPUT hint offers `parallel_requests` > 1 and `run_parallel`). The latencies above stay
    one request at a time: that is what a single caller waits. Others: None, and throughput is the
    batch size over the mean single-request latency, as for every runtime."""
    requests = getattr(runner, "parallel_requests", 1)
    if requests <= 1:
        return None
    batches = max(spec["repetitions"], 4 * requests)
    runner.run_parallel(feeds, requests)  # warm-up: every request runs once
    seconds = runner.run_parallel(feeds, batches)
    return {"requests": requests, "batches": batches, "seconds": seconds}


def _device(runner: Any) -> dict[str, str]:
    """The device as the runner's runtime reports it (a runtime with device plugins has a
    `device()`); empty for the others, whose device is the CPU the fingerprint already names."""
    describe = getattr(runner, "device", None)
    return describe() if callable(describe) else {}


class OtherLoad:
    """Share of the machine's CPU that other processes used while a block ran (0..1).

    Busy time of all cores (psutil.cpu_times) minus this process's own CPU time, over the wall
    time times the core count: a repetition measured while something else ran is known as such.
    """

    def __init__(self) -> None:
        self.proc = psutil.Process()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def _own(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> OtherLoad:
        self.start = (time.perf_counter(), self._busy(), self._own())
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.start[0]
        others = (self._busy() - self.start[1]) - (self._own() - self.start[2])
        self.share = max(0.0, others) / (wall * (psutil.cpu_count() or 1)) if wall > 0 else 0.0


def measure(spec: dict) -> dict:
    """Prefill and decode as llama-bench measures them, for every runtime alike:
    prefill = the prompt's tokens in one batch from an empty cache (llama-bench "pp");
    decode = gen_tokens greedy tokens one at a time, starting from the prompt's first token in an
    empty cache (llama-bench "tg"). Each repetition records the other processes' CPU share."""
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    _import_runtime(spec)
    rss_runtime = proc.memory_info().rss
    from backends.registry import resolve_runner

    t = time.perf_counter()
    n_ctx = max(1024, spec["prompt_tokens"] + spec["gen_tokens"] + 8)
    runner = resolve_runner(spec["runner"])(Path(spec["path"]), threads=spec["threads"], n_ctx=n_ctx,
                                            all_logits=False)
    load_s = time.perf_counter() - t
    rss_loaded = proc.memory_info().rss
    ids = spec["prompt_ids"]
    runs = []
    for rep in range(spec["warmup"] + spec["repetitions"]):
        with OtherLoad() as prefill_load:
            ttft, _ = runner.timed_generation(ids, 1)
        with OtherLoad() as decode_load:
            _, steps = runner.timed_generation(ids[:1], spec["gen_tokens"] + 1)
        if rep >= spec["warmup"]:
            runs.append({"ttft_s": ttft, "prefill_tps": len(ids) / ttft,
                         "decode_tps": len(steps) / sum(steps) if steps else 0.0, "token_s": steps,
                         "others_cpu_share": max(prefill_load.share, decode_load.share)})
    versions = runner.versions()
    runtime = runner.runtime
    device = _device(runner)
    runner.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"load_s": load_s, "rss_start": rss_start, "rss_after_runtime_import": rss_runtime,
            "rss_after_load": rss_loaded, "peak_rss": peak, "memory_rise": peak - rss_runtime, "runs": runs,
            "versions": versions, "runtime": runtime, "device": device}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = measure_encoder_classifier(spec) if spec.get("kind") == "encoder_classifier" else measure(spec)
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
