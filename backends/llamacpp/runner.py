"""GGUF models through llama-cpp-python (CPU).

Speed runs call llama.cpp's C API directly (decode, then greedy sampling inside the runtime), as
llama-bench does: the high-level `Llama.eval` copies a vocabulary-sized row of logits into numpy
and takes its argmax in Python for every token, which cost about 30% of decode speed on the demo.
"""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np

from backends.llamacpp.tools import llama_cpp_build


class LlamaCppRunner:
    runtime = "llama.cpp CPU"

    def __init__(self, path: Path, threads: int, n_ctx: int, all_logits: bool = True,
                 flash_attn: bool | None = None) -> None:
        import llama_cpp
        from llama_cpp import Llama

        self.lib = llama_cpp
        self.path, self.threads, self.n_ctx = path, threads, n_ctx
        self._upstream: LlamaCppRunner | None = None
        # Speed runs (no logits kept) use flash attention, as llama-bench's default ("auto") does on
        # the CPU; quality runs and smoke tests keep the exact attention they always used, so gates
        # and stored quality figures do not move with a speed setting.
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         logits_all=all_logits, verbose=False, seed=0,
                         flash_attn=(not all_logits) if flash_attn is None else flash_attn)
        self.ctx = self.llm._ctx.ctx
        self.sampler = llama_cpp.llama_sampler_init_greedy()

    def tokenize(self, text: str) -> list[int]:
        # add_bos=True means "add the vocabulary's special tokens if it wants them", as
        # llama-perplexity's common_tokenize(..., add_special=true) does.
        return self.llm.tokenize(text.encode(), add_bos=True, special=False)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)

    def upstream_logits(self, ids: list[int]) -> np.ndarray:
        """Logits as llama-perplexity computes them: flash attention on (its "auto" on the CPU),
        so the llama.cpp-compatible perplexity matches the tool's; a second context on the same
        (memory-mapped) file, made on first use."""
        if self._upstream is None:
            self._upstream = LlamaCppRunner(self.path, self.threads, self.n_ctx, all_logits=True, flash_attn=True)
        return self._upstream.logits(ids)

    def generate(self, prompt: str, max_tokens: int) -> str:
        self.llm.reset()
        out = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, top_k=1)
        return out["choices"][0]["text"]

    def _decode(self, ids: list[int], pos: int) -> int:
        """Decode ids at positions pos.. (one batch) and return the greedy next token."""
        tokens = (self.lib.llama_token * len(ids))(*ids)
        batch = self.lib.llama_batch_get_one(tokens, len(ids))
        if self.lib.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError(f"llama_decode failed at position {pos}")
        return int(self.lib.llama_sampler_sample(self.sampler, self.ctx, -1))

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        lib = self.lib
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        self.llm.reset()  # keep the high-level object's view of the cache consistent
        start = time.perf_counter()
        token = self._decode(ids, 0)
        ttft = time.perf_counter() - start
        steps = []
        for i in range(n - 1):
            t = time.perf_counter()
            token = self._decode([token], len(ids) + i)
            steps.append(time.perf_counter() - t)
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return runtime_versions()

    def close(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        self.lib.llama_sampler_free(self.sampler)
        self.llm.close()


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> LlamaCppRunner:
    return LlamaCppRunner(path, threads, n_ctx, all_logits)


def runtime_versions() -> dict[str, str]:
    return {"llama-cpp-python": importlib.metadata.version("llama-cpp-python"), "llama.cpp build": llama_cpp_build()}


def fingerprint_fields() -> dict[str, str]:
    """Recorded with every llama.cpp result: the binding's build (version and instruction-set level)."""
    return {"llama_cpp_build": llama_cpp_build()}
