"""The runner interfaces every toolkit implements: causal LMs (tokens in, logits out, generate,
report) and encoders/classifiers (feeds in, task outputs out)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, mean_pool


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


class EncoderClassifierRunner(Protocol):
    """A loaded encoder or classifier. A runner may also offer, and bench.measure uses when present:
    `device() -> dict[str, str]` (the device as its runtime's plugin reports it, recorded in the
    fingerprint), and `parallel_requests: int` with `run_parallel(feeds, batches) -> seconds` (a
    runner compiled for throughput, timed with that many requests in flight). Benchmark options
    its format declares (Format.runtime_options) arrive as keyword arguments of its opener."""

    runtime: str
    task: str

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The model's first output for one batch (hidden states or logits)."""
        ...

    def versions(self) -> dict[str, str]:
        ...

    def close(self) -> None:
        ...


def outputs(runner: EncoderClassifierRunner, feeds: dict[str, np.ndarray]) -> np.ndarray:
    raw = runner.raw(feeds)
    return raw if runner.task == CLASSIFIER_TASK else mean_pool(raw, feeds["attention_mask"])
