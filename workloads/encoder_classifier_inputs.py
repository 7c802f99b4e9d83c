"""Inputs for encoder and image-classifier models, built the same way for every runtime.

Encoder text is tokenized with the tokenizer.json of the model's folder (the source's own for
quality, so every runtime scores the same ids), padded to a fixed length so one batch is one
tensor. Image classifiers take the digits images as (batch, 1, 8, 8) float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ENCODER_TASK = "feature-extraction"
CLASSIFIER_TASK = "image-classification"
ENCODER_CLASSIFIER_TASKS = (ENCODER_TASK, CLASSIFIER_TASK)
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenizer_file(folder: Path) -> Path:
    path = folder / "tokenizer.json"
    if not path.is_file():
        from catalog.errors import InvalidInputError

        # (folder is the catalog's own, a variant's or a job's "out": its name means nothing to a user)
        raise InvalidInputError("This encoder has no tokenizer.json, so its text inputs cannot be built; import "
                                "its Hugging Face folder with the tokenizer.json and export it again.")
    return path


def encode_sentences(folder: Path, sentences: list[str] | tuple[str, ...], seq_len: int) -> dict[str, np.ndarray]:
    """input_ids, attention_mask and token_type_ids (int64, shape (n, seq_len))."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file(folder)))
    tok.enable_truncation(seq_len)
    tok.enable_padding(length=seq_len)
    encodings = tok.encode_batch(list(sentences))
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}


def batches(feeds: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(feeds.values())))
    return [{k: v[i:i + size] for k, v in feeds.items()} for i in range(0, n, size)]


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings as sentence-transformers makes them: the mean over real tokens."""
    mask = attention_mask[..., None].astype(np.float32)
    return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)


def all_finite(outputs: np.ndarray) -> bool:
    """Whether every output is a finite number. A model with NaN or infinite outputs is never
    published (the smoke tests) and never scored as if it worked (benchmarks)."""
    return bool(np.isfinite(outputs).all())


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(-1, keepdims=True)
