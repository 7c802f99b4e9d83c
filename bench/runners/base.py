"""The runner interface: load, tokens in -> logits out, generate, report."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Runner(Protocol):
    """A loaded model in one runtime. Every runtime scores the same token ids the same way."""

    runtime: str          # e.g. "llama.cpp CPU", "transformers FP32 CPU"

    def tokenize(self, text: str) -> list[int]:
        """Token ids of text, with the model's beginning-of-text token if it uses one."""
        ...

    def logits(self, ids: list[int]) -> np.ndarray:
        """Next-token logits at every position: shape (len(ids), vocab), float32."""
        ...

    def generate(self, prompt: str, max_tokens: int) -> str:
        """Greedy continuation of prompt (no sampling), as text."""
        ...

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        """Greedy decode of n tokens after prefilling ids: (time to first token, seconds per
        later token). Uses the runtime's own cache, as an application would."""
        ...

    def versions(self) -> dict[str, str]:
        ...

    def close(self) -> None:
        ...
