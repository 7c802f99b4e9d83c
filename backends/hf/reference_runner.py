"""The reference runner: a Hugging Face folder in transformers, FP32, on the CPU."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np


class ReferenceRunner:
    runtime = "transformers FP32 CPU"

    def __init__(self, path: Path, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, local_files_only=True,
                                                          trust_remote_code=False)
        self.model.eval()

    def tokenize(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    def logits(self, ids: list[int]) -> np.ndarray:
        with self.torch.no_grad():
            out = self.model(self.torch.tensor([ids]))
        return out.logits[0].float().numpy()

    def generate(self, prompt: str, max_tokens: int) -> str:
        ids = self.tokenize(prompt)
        with self.torch.no_grad():
            out = self.model.generate(self.torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False)
        return self.tok.decode(out[0][len(ids):], skip_special_tokens=True)

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        torch = self.torch
        with torch.no_grad():
            start = time.perf_counter()
            out = self.model(torch.tensor([ids]), use_cache=True)
            token = int(out.logits[0, -1].argmax())
            ttft = time.perf_counter() - start
            past, steps = out.past_key_values, []
            for _ in range(n - 1):
                t = time.perf_counter()
                out = self.model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past, token = out.past_key_values, int(out.logits[0, -1].argmax())
                steps.append(time.perf_counter() - t)
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return runtime_versions()

    def close(self) -> None:
        del self.model


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> ReferenceRunner:
    return ReferenceRunner(path, threads)


def runtime_versions() -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in ("torch", "transformers")}
