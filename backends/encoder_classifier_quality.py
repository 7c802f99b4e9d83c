"""Held-out inputs, predictions and comparisons for encoders and classifiers: the same for the
smoke test after a conversion and for benchmarks.

A classifier is compared by top-1 agreement, an encoder by the cosine similarity of its
mean-pooled sentence embeddings; the maximum absolute error comes with both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backends.registry import open_encoder_classifier
from backends.runtime import outputs
from workloads.datasets import digits, eval_sentences
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, batches, encode_sentences

SEQ_LEN = 64
BATCH = 16


def eval_feeds(task: str, tokenizer_folder: Path, n: int, seq_len: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """The first n held-out inputs of the task: digits test images, or benchmark-text sentences."""
    if task == CLASSIFIER_TASK:
        return {"pixel_values": digits().test_images[:n]}
    return encode_sentences(tokenizer_folder, eval_sentences()[:n], seq_len)


def predict(fmt: str, path: Path, task: str, feeds: dict[str, np.ndarray], threads: int = 1,
            runtime_options: dict[str, Any] | None = None) -> np.ndarray:
    runner = open_encoder_classifier(fmt, path, task, threads, **(runtime_options or {}))
    try:
        return np.concatenate([outputs(runner, b) for b in batches(feeds, BATCH)])
    finally:
        runner.close()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def compare(task: str, parent: np.ndarray, child: np.ndarray) -> dict[str, float]:
    """The score (top-1 agreement or mean cosine) and the other figures shown with it."""
    if task == CLASSIFIER_TASK:
        return {"score": float((parent.argmax(-1) == child.argmax(-1)).mean()),
                "max_abs_error": float(np.abs(parent - child).max())}
    cos = cosine(parent, child)
    return {"score": float(cos.mean()), "cosine_min": float(cos.min()),
            "max_abs_error": float(np.abs(parent - child).max())}
