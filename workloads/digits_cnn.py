"""The digits CNN: a small image classifier with real weights and real labels, trained here in
seconds on scikit-learn's bundled 8x8 digits (no download), then kept as a Hugging Face-style
folder (config.json + model.safetensors) so it is imported, hashed and converted like any model.

Training is seeded and single-threaded, so the same code makes the same bytes: importing the
example twice finds the existing source. So the trained folder is kept in the user's cache (keyed by
this code, the dataset code and the torch and scikit-learn versions) and copied from there: an
import takes a second instead of the 10-17 s of training (and of importing torch).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ARCHITECTURE = "DigitsCNNForImageClassification"
MODEL_TYPE = "digits-cnn"
SEED = 0
EPOCHS = 30
CONFIG: dict[str, Any] = {
    "architectures": [ARCHITECTURE], "model_type": MODEL_TYPE, "num_labels": 10, "image_size": 8,
    "num_channels": 1, "hidden_channels": [16, 32], "hidden_size": 64,
    "id2label": {str(i): str(i) for i in range(10)},
    "description": "Convolutional classifier of 8x8 grey digits (scikit-learn's digits, UCI optdigits test set), "
                   "trained by backends/digits_cnn.py; inputs are pixel values / 16, shape (batch, 1, 8, 8).",
}


def build_module(config: dict[str, Any] | None = None):
    import torch
    from torch import nn

    cfg = config or CONFIG
    c1, c2 = cfg["hidden_channels"]
    size = cfg["image_size"]
    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Conv2d(cfg["num_channels"], c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        # The head runs on (batch, 1, features) so its Linear layers export as MatMul + Add (2-D input
        # gives Gemm), which the INT4 weight-only quantizer (MatMulNBits) can take.
        nn.Flatten(), nn.Unflatten(1, (1, c2 * (size // 2) ** 2)),
        nn.Linear(c2 * (size // 2) ** 2, cfg["hidden_size"]), nn.ReLU(),
        nn.Linear(cfg["hidden_size"], cfg["num_labels"]), nn.Flatten(),
    )


def train(out: Path) -> dict[str, float]:
    """Train on the training split and write config.json + model.safetensors to out; returns the
    held-out accuracy."""
    import torch
    from safetensors.torch import save_file

    from workloads.datasets import digits

    torch.set_num_threads(1)  # deterministic bytes, and conversions share the cores
    data = digits()
    x, y = torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels).long()
    model = build_module()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.test_images)).argmax(-1).numpy()
    accuracy = float((predicted == data.test_labels).mean())
    out.mkdir(parents=True, exist_ok=True)
    config = dict(CONFIG, test_accuracy=round(accuracy, 4), train_epochs=EPOCHS)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    (out / "README.md").write_text(
        "---\nlicense: bsd-3-clause\n---\n# Digits CNN\n\n" + CONFIG["description"] + "\n\nThe training data is "
        "scikit-learn's copy of the UCI ML hand-written digits (optdigits), BSD-3-Clause as shipped with "
        f"scikit-learn.\nHeld-out accuracy after training: {accuracy:.4f}.\n")
    log.info("trained the digits CNN: held-out accuracy %.4f", accuracy)
    return {"test_accuracy": accuracy}


def trained(out: Path) -> dict[str, float]:
    """train(out), or a copy of the same training kept in the user's cache (MODEL_CATALOG_CACHE or
    ~/.cache/model-catalog); returns the held-out accuracy as train does."""
    kept = _cache_dir() / f"digits-cnn-{_training_key()}"
    if (kept / "model.safetensors").is_file():
        shutil.copytree(kept, out, dirs_exist_ok=True)
        accuracy = json.loads((out / "config.json").read_text())["test_accuracy"]
        log.info("the digits CNN, trained before, copied from %s", kept)
        return {"test_accuracy": accuracy}
    scores = train(out)
    partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
    try:  # a cache only: a read-only or full cache folder costs the next import its training, nothing else
        shutil.copytree(out, partial)
        partial.rename(kept)
    except OSError as exc:
        log.info("the trained digits CNN was not kept in the cache (%s)", exc)
        shutil.rmtree(partial, ignore_errors=True)
    return scores


def _cache_dir() -> Path:
    return Path(os.environ.get("MODEL_CATALOG_CACHE") or Path.home() / ".cache" / "model-catalog") / "examples"


def _training_key() -> str:
    """What decides the trained bytes: the training and dataset code and the two libraries."""
    digest = hashlib.sha256()
    for module in (Path(__file__), Path(__file__).with_name("datasets.py")):
        digest.update(module.read_bytes())
    for package in ("torch", "scikit-learn"):
        digest.update(importlib.metadata.version(package).encode())
    return digest.hexdigest()[:16]


def load_module(folder: Path):
    """The trained module from its folder (safetensors only: never a pickle)."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    model = build_module(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval()
    return model


def is_digits_cnn(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False
