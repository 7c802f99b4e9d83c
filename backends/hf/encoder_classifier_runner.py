"""The FP32 PyTorch reference for encoders and image classifiers (the source's Hugging Face
form, or the digits CNN): feeds in, the model's first output out (backends.runtime.outputs turns
it into what quality is scored on)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np

from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, ENCODER_INPUTS


class TorchReferenceRunner:
    runtime = "PyTorch FP32 CPU"

    def __init__(self, path: Path, task: str, threads: int) -> None:
        import torch

        from workloads.digits_cnn import is_digits_cnn, load_module

        torch.set_num_threads(threads)
        self.task = task
        if is_digits_cnn(path):
            self.model, self.names = load_module(path), ("pixel_values",)
        else:
            from transformers import AutoModel

            config = json.loads((path / "config.json").read_text())
            self.model = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False,
                                                   local_files_only=True, dtype=torch.float32).eval()
            self.names = ENCODER_INPUTS if config.get("type_vocab_size", 0) else ENCODER_INPUTS[:2]

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            args = {k: torch.from_numpy(feeds[k]) for k in self.names}
            if self.task == CLASSIFIER_TASK:
                return self.model(args["pixel_values"]).float().numpy()
            return self.model(**args).last_hidden_state.float().numpy()

    def versions(self) -> dict[str, str]:
        return {d: importlib.metadata.version(d) for d in ("torch", "transformers")}

    def close(self) -> None:
        self.model = None


def load(path: Path, task: str, threads: int = 2) -> TorchReferenceRunner:
    return TorchReferenceRunner(path, task, threads)
