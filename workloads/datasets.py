"""Task data shipped with the project or its packages, for calibration and evaluation (offline).

- Digits: scikit-learn's bundled 8x8 digits, split once with a fixed seed. Training images are
  also the calibration images; the held-out split (with labels) is what benchmarks score.
- Sentences: the encoder's evaluation sentences come from the benchmark text (the Apache
  License), its calibration lines from the shipped calibration text (Python documentation), so
  no recipe calibrates on what benchmarks measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from catalog.config import PROJECT_DIR
from catalog.errors import InvalidInputError
from workloads.encoder_classifier_inputs import all_finite

# The benchmark text (LLM perplexity, the encoder's evaluation sentences); bench.protocol names it too.
EVAL_TEXT = PROJECT_DIR / "assets" / "eval" / "apache-2.0.txt"
CALIBRATION_TEXT = PROJECT_DIR / "assets" / "calibration" / "python-docs-excerpt.txt"
DIGITS_SEED = 0
DIGITS_TEST_SHARE = 0.25
IMAGE_SHAPE = (1, 8, 8)


@dataclass(frozen=True)
class Digits:
    train_images: np.ndarray   # float32 (n, 1, 8, 8), pixel values / 16
    train_labels: np.ndarray   # int64 (n,)
    test_images: np.ndarray
    test_labels: np.ndarray


@lru_cache(maxsize=1)
def digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SEED).permutation(len(labels))
    n_test = int(len(labels) * DIGITS_TEST_SHARE)
    test, train = order[:n_test], order[n_test:]
    return Digits(images[train], labels[train], images[test], labels[test])


def _sentences(path: Path, min_words: int = 4, max_chars: int = 400) -> list[str]:
    text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
    parts = re.split(r"(?<=[.;:])\s+", text)
    return [p.strip() for p in parts if len(p.split()) >= min_words and len(p) <= max_chars]


@lru_cache(maxsize=1)
def eval_sentences() -> tuple[str, ...]:
    return tuple(_sentences(EVAL_TEXT))


@lru_cache(maxsize=1)
def calibration_sentences() -> tuple[str, ...]:
    return tuple(_sentences(CALIBRATION_TEXT))


# ------------------------------------------------------------------------- uploaded calibration data


def read_calibration_lines(path: Path, minimum: int = 8) -> list[str]:
    """Non-empty lines of an uploaded UTF-8 text file; one sentence if it is not usable."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise InvalidInputError(f"The calibration file {path.name} is not UTF-8 text; upload one sentence per "
                                "line as a plain .txt file.") from None
    if len(lines) < minimum:
        raise InvalidInputError(f"The calibration file {path.name} has {len(lines)} non-empty lines; give at "
                                f"least {minimum}, one sentence per line.")
    return lines


def read_calibration_images(path: Path, shape: tuple[int, ...] = IMAGE_SHAPE, minimum: int = 8) -> np.ndarray:
    """Images from an uploaded .npy array (never unpickled) as float32 (n, *shape).

    Accepted: (n, *shape), or (n, h, w) for one channel; values in [0, 1] or raw 0-16 digits
    pixels (scaled). Anything else is refused with the shape the model needs."""
    if path.suffix.lower() != ".npy":
        raise InvalidInputError(f"{path.name} is not a .npy array; upload calibration images as a NumPy .npy "
                                f"file of shape (n, {', '.join(map(str, shape))}).")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(f"{path.name} is not a readable NumPy array ({str(exc)[:80]}); save it with "
                                "numpy.save and upload it again.") from None
    if array.ndim == len(shape) and shape[0] == 1:
        array = array[:, None]
    if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != tuple(shape):
        raise InvalidInputError(f"The calibration images have shape {tuple(array.shape)}, but this model takes "
                                f"(n, {', '.join(map(str, shape))}); reshape them and upload again.")
    if not np.issubdtype(array.dtype, np.number) or len(array) < minimum:
        raise InvalidInputError(f"Give at least {minimum} numeric calibration images; {path.name} holds "
                                f"{len(array)} of type {array.dtype}.")
    array = array.astype(np.float32)
    if not all_finite(array):  # onnxruntime's calibrator would stop with "AssertionError: scale issue"
        raise InvalidInputError(f"{path.name} holds NaN or infinite pixel values; calibration images must be "
                                "finite numbers, so fix or drop those images and upload again.")
    return array / 16.0 if array.max() > 1.0 else array
