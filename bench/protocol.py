"""Benchmark protocols: one per task, two profiles, each with a stable identity.

Perplexity scoring, the same for every runtime: the shipped text is tokenized once with the
source's own (reference) tokenizer; the first `ppl_tokens` ids are cut into non-overlapping
windows of `ppl_window` tokens; inside each window every position but the first is scored
(the model predicts token i from tokens 0..i-1 of that window). Top-1 agreement, KL divergence
and the maximum absolute error against the source use exactly these positions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from catalog.identity import digest
from workloads.datasets import EVAL_TEXT  # noqa: F401 - the protocol's text, read here by the jobs and tests
from workloads.prompts import PROMPTS


@dataclass(frozen=True)
class CausalLMProtocol:
    profile: str
    prompt_tokens: int       # prefill length for the speed runs (a prefix of the eval text)
    gen_tokens: int          # greedy decode length for the speed runs
    warmup: int
    repetitions: int
    threads: int
    ppl_tokens: int          # how much of the eval text is scored (0: all of it)
    ppl_window: int
    gen_prompts: tuple[str, ...] = PROMPTS
    generation_tokens: int = 32
    task: str = "text-generation"
    # llama.cpp-compatible perplexity (bench.metrics.llamacpp_perplexity): chunk size, chunks (0: all)
    compat_ctx: int = 512
    compat_chunks: int = 0
    # Version 2: prefill and decode measured as llama-bench does (decode from an empty cache),
    # reported as the median of the repetitions other processes did not disturb. Version 3: a
    # GGUF's llama.cpp-compatible perplexity is computed with flash attention on, as
    # llama-perplexity does.
    version: int = 3

    @property
    def id(self) -> str:
        return "p-" + digest(asdict(self), length=12)

    def windows(self, n_tokens: int) -> list[tuple[int, int]]:
        """(start, end) of each scored window over the first ppl_tokens ids."""
        total = min(n_tokens, self.ppl_tokens) if self.ppl_tokens else n_tokens
        return [(s, min(s + self.ppl_window, total)) for s in range(0, total, self.ppl_window)
                if min(s + self.ppl_window, total) - s >= 2]


PROFILES = {
    "quick": CausalLMProtocol(profile="quick", prompt_tokens=64, gen_tokens=16, warmup=1, repetitions=2,
                              threads=2, ppl_tokens=512, ppl_window=256, compat_chunks=1),
    # The speed runs are llama-bench's `-p 256 -n 64 -t 2`, so the figures can be held against it.
    "full": CausalLMProtocol(profile="full", prompt_tokens=256, gen_tokens=64, warmup=2, repetitions=10,
                             threads=2, ppl_tokens=0, ppl_window=512),
}


@dataclass(frozen=True)
class TensorProtocol:
    """Encoders and image classifiers: latency of one fixed batch, quality over held-out inputs
    (digits test images with their labels; sentences of the benchmark text)."""

    task: str
    profile: str
    batch_size: int
    seq_len: int             # encoder inputs are padded/truncated to this (0 for images)
    warmup: int
    repetitions: int
    threads: int
    eval_samples: int        # held-out inputs scored for quality (0: all)
    version: int = 1

    @property
    def id(self) -> str:
        return "p-" + digest(asdict(self), length=12)


TENSOR_PROFILES = {
    ("feature-extraction", "quick"): TensorProtocol("feature-extraction", "quick", batch_size=8, seq_len=128,
                                                    warmup=2, repetitions=10, threads=2, eval_samples=64),
    ("feature-extraction", "full"): TensorProtocol("feature-extraction", "full", batch_size=8, seq_len=128,
                                                   warmup=5, repetitions=50, threads=2, eval_samples=0),
    ("image-classification", "quick"): TensorProtocol("image-classification", "quick", batch_size=32, seq_len=0,
                                                      warmup=5, repetitions=50, threads=2, eval_samples=0),
    ("image-classification", "full"): TensorProtocol("image-classification", "full", batch_size=32, seq_len=0,
                                                     warmup=20, repetitions=500, threads=2, eval_samples=0),
}


def protocol_for(profile: str, task: str | None = "text-generation") -> CausalLMProtocol | TensorProtocol:
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; use quick or full.")
    if (task, profile) in TENSOR_PROFILES:
        return TENSOR_PROFILES[(task, profile)]
    return PROFILES[profile]
