"""Calibration samples for encoder and classifier quantizers (ONNX Runtime's and NNCF's): the
shipped data or an uploaded file (UTF-8 text, one sentence per line, or a NumPy .npy array of
images, never unpickled), one feed per sample, with only the inputs the model takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catalog.calibration import checked_file
from catalog.errors import InvalidInputError
from workloads.datasets import (
    IMAGE_SHAPE,
    calibration_sentences,
    digits,
    read_calibration_images,
    read_calibration_lines,
)
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, encode_sentences

CALIBRATION_SEQ_LEN = 128


def calibration_samples(task: str, tokenizer_folder: Path, calibration: str, n: int,
                        input_names: list[str] | None = None) -> list[dict[str, np.ndarray]]:
    """One feed per calibration sample; one sentence when the file does not suit the model."""
    path = checked_file(calibration)
    if task == CLASSIFIER_TASK:
        if path is not None and path.suffix.lower() == ".txt":
            raise InvalidInputError("This model takes images, but the calibration file is text; upload a .npy "
                                    f"array of shape (n, {', '.join(map(str, IMAGE_SHAPE))}).")
        images = digits().train_images if path is None else read_calibration_images(path)
        feeds = [{"pixel_values": images[i:i + 1]} for i in range(min(n, len(images)))]
    else:
        if path is not None and path.suffix.lower() != ".txt":
            raise InvalidInputError("This model takes text, but the calibration file is not a .txt file; upload "
                                    "UTF-8 text with one sentence per line.")
        lines = list(calibration_sentences()) if path is None else read_calibration_lines(path)
        encoded = encode_sentences(tokenizer_folder, lines[:n], CALIBRATION_SEQ_LEN)
        feeds = [{k: v[i:i + 1] for k, v in encoded.items()} for i in range(len(encoded["input_ids"]))]
    if input_names:
        feeds = [{k: v for k, v in f.items() if k in input_names} for f in feeds]
    return feeds
