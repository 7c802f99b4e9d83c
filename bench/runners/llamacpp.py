"""GGUF models through llama-cpp-python (CPU)."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np


class LlamaCppRunner:
    runtime = "llama.cpp CPU"

    def __init__(self, path: Path, threads: int, n_ctx: int, all_logits: bool = True) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         logits_all=all_logits, verbose=False, seed=0)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=True, special=False)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)

    def generate(self, prompt: str, max_tokens: int) -> str:
        self.llm.reset()
        out = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, top_k=1)
        return out["choices"][0]["text"]

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        self.llm.reset()
        start = time.perf_counter()
        self.llm.eval(ids)
        token = int(np.argmax(self.llm.scores[len(ids) - 1]))
        ttft = time.perf_counter() - start
        steps = []
        for i in range(n - 1):
            t = time.perf_counter()
            self.llm.eval([token])
            token = int(np.argmax(self.llm.scores[len(ids) + i]))
            steps.append(time.perf_counter() - t)
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return {"llama-cpp-python": importlib.metadata.version("llama-cpp-python")}

    def close(self) -> None:
        self.llm.close()


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> LlamaCppRunner:
    return LlamaCppRunner(path, threads, n_ctx, all_logits)
