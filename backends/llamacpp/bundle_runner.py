"""A device-run bundle's runner for GGUF variants (copied into bundles as runners/gguf.py).

Standalone: llama-cpp-python (and the numpy it installs) and the standard library, never the
catalog. It measures as the catalog's own llama.cpp runner does (backends/llamacpp/runner.py):
prefill of the prompt ids from an empty cache, greedy decode from the first prompt token, each
through llama.cpp's C API with flash attention on (llama-bench's "auto" on a CPU); quality as the
negative log-likelihood of every scored position of each window of the evaluation ids, with exact
attention and every position's logits kept, as the catalog scores it.
"""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any

RUNTIME = "llama.cpp"


def import_runtime() -> None:
    import llama_cpp  # noqa: F401 - counted before the model loads


def _target(llama_cpp: Any) -> str:
    """Where llama.cpp runs the layers: a GPU backend (Metal, CUDA, Vulkan) when it offloads, else the CPU."""
    offload = bool(getattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)())
    return f"{RUNTIME} GPU offload" if offload else f"{RUNTIME} CPU"


class _Speed:
    def __init__(self, path: Path, threads: int, n_ctx: int) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                   logits_all=False, verbose=False, seed=0, flash_attn=True)
        self.ctx = self.llm._ctx.ctx
        self.sampler = llama_cpp.llama_sampler_init_greedy()

    def _decode(self, ids: list[int], pos: int) -> int:
        tokens = (self.lib.llama_token * len(ids))(*ids)
        if self.lib.llama_decode(self.ctx, self.lib.llama_batch_get_one(tokens, len(ids))) != 0:
            raise RuntimeError(f"llama_decode failed at position {pos}")
        return int(self.lib.llama_sampler_sample(self.sampler, self.ctx, -1))

    def timed(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        self.llm.reset()
        start = time.perf_counter()
        token = self._decode(ids, 0)
        ttft = time.perf_counter() - start
        steps = []
        for i in range(n - 1):
            t = time.perf_counter()
            token = self._decode([token], len(ids) + i)
            steps.append(time.perf_counter() - t)
        return ttft, steps

    def close(self) -> None:
        self.lib.llama_sampler_free(self.sampler)
        self.llm.close()


def _window_nll(path: Path, threads: int, ids: list[int], windows: list[list[int]]) -> list[list[float]]:
    """[nll sum, positions] per window: position i of a window predicts token i+1 of it."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads, logits_all=True,
                verbose=False, seed=0, flash_attn=False)
    out = []
    for start, end in windows:
        llm.reset()
        llm.eval(ids[start:end])
        logits = np.array(llm.scores[: end - start - 1], dtype=np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        lp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        targets = np.array(ids[start + 1:end])
        out.append([float(-lp[np.arange(len(targets)), targets].sum()), len(targets)])
    llm.close()
    return out


def _generations(path: Path, threads: int, prompts: list[str], n: int) -> list[dict[str, str]]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, verbose=False, seed=0)
    out = []
    for prompt in prompts:
        llm.reset()
        done = llm.create_completion(prompt, max_tokens=n, temperature=0.0, top_k=1)
        out.append({"prompt": prompt, "text": done["choices"][0]["text"]})
    llm.close()
    return out


def run_speed(path: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """Load time and the speed runs (the driver reads the peak memory right after)."""
    import llama_cpp

    prompt = workload["prompt_ids"]
    t = time.perf_counter()
    speed = _Speed(path, protocol["threads"], max(1024, protocol["prompt_tokens"] + protocol["gen_tokens"] + 8))
    load_s = time.perf_counter() - t
    runs = []
    for rep in range(protocol["warmup"] + protocol["repetitions"]):
        ttft, _ = speed.timed(prompt, 1)
        _, steps = speed.timed(prompt[:1], protocol["gen_tokens"] + 1)
        if rep >= protocol["warmup"]:
            runs.append({"ttft_s": ttft, "prefill_tps": len(prompt) / ttft,
                         "decode_tps": len(steps) / sum(steps) if steps else 0.0, "token_s": steps})
    speed.close()
    return {"runtime": RUNTIME, "target": _target(llama_cpp), "load_s": load_s, "runs": runs,
            "versions": {"llama-cpp-python": importlib.metadata.version("llama-cpp-python")}}


def run_quality(path: Path, protocol: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """Per-window log-likelihoods of the evaluation ids, and the protocol's greedy generations."""
    threads = protocol["threads"]
    return {"window_nll": _window_nll(path, threads, workload["eval_ids"], workload["windows"]),
            "generations": _generations(path, threads, workload["gen_prompts"], protocol["generation_tokens"])}
