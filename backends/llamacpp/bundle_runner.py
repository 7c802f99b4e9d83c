"""A device-run bundle's runner for GGUF variants (copied into bundles as runners/gguf.py).

Standalone: llama-cpp-python (and the numpy it installs) and the standard library, never the
catalog. The bundle's driver (bench/run_bundle.py) runs the protocol through `load()`, as the
catalog's own llama.cpp runner is run here (backends/llamacpp/runner.py): speed runs prefill the
prompt ids from an empty cache and decode greedily through llama.cpp's C API with flash attention
on (llama-bench's "auto" on a CPU); quality runs use exact attention and keep every position's
logits, as the catalog scores them.
"""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any

RUNTIME = "llama.cpp"


def import_runtime() -> None:
    import llama_cpp  # noqa: F401 - counted before the model loads


class GGUFBundleRunner:
    runtime = RUNTIME

    def __init__(self, path: Path, threads: int, n_ctx: int, all_logits: bool) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                   logits_all=all_logits, verbose=False, seed=0, flash_attn=not all_logits)
        self.ctx = self.llm._ctx.ctx
        self.sampler = llama_cpp.llama_sampler_init_greedy()

    def _decode(self, ids: list[int], pos: int) -> int:
        tokens = (self.lib.llama_token * len(ids))(*ids)
        if self.lib.llama_decode(self.ctx, self.lib.llama_batch_get_one(tokens, len(ids))) != 0:
            raise RuntimeError(f"llama_decode failed at position {pos}")
        return int(self.lib.llama_sampler_sample(self.sampler, self.ctx, -1))

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
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

    def logits(self, ids: list[int]) -> Any:
        import numpy as np

        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)

    def generate(self, prompt: str, max_tokens: int) -> str:
        self.llm.reset()
        done = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, top_k=1)
        return done["choices"][0]["text"]

    def device(self) -> dict[str, str]:
        """Where llama.cpp runs the layers: a GPU backend (Metal, CUDA, Vulkan) when it offloads, else the CPU."""
        offload = bool(getattr(self.lib, "llama_supports_gpu_offload", lambda: False)())
        return {"target": f"{RUNTIME} GPU offload" if offload else f"{RUNTIME} CPU"}

    def versions(self) -> dict[str, str]:
        return {"llama-cpp-python": importlib.metadata.version("llama-cpp-python")}

    def close(self) -> None:
        self.lib.llama_sampler_free(self.sampler)
        self.llm.close()


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> GGUFBundleRunner:
    return GGUFBundleRunner(path, threads, n_ctx, all_logits)
