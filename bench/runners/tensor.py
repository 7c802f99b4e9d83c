"""Runners for encoders and image classifiers: feeds in, task outputs out.

`outputs(feeds)` returns what quality is scored on: sentence embeddings (mean-pooled over real
tokens) for an encoder, class logits for a classifier. Two runtimes implement it: ONNX Runtime
for ONNX variants, and the FP32 PyTorch reference for the source's Hugging Face form.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Protocol

import numpy as np

from bench.tensor_inputs import CLASSIFIER_TASK, ENCODER_INPUTS, mean_pool


class TensorRunner(Protocol):
    runtime: str
    task: str

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The model's first output for one batch (hidden states or logits)."""
        ...

    def versions(self) -> dict[str, str]:
        ...

    def close(self) -> None:
        ...


def outputs(runner: TensorRunner, feeds: dict[str, np.ndarray]) -> np.ndarray:
    raw = runner.raw(feeds)
    return raw if runner.task == CLASSIFIER_TASK else mean_pool(raw, feeds["attention_mask"])


def model_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted(path.glob("*.onnx"))
    if not files:
        raise ValueError(f"{path.name} holds no .onnx file")
    return files[0]


class OnnxSessionRunner:
    runtime = "ONNX Runtime CPU"

    def __init__(self, path: Path, task: str, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.task = task
        self.session = ort.InferenceSession(str(model_file(path)), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(None, {k: feeds[k] for k in self.input_names})[0], dtype=np.float32)

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": importlib.metadata.version("onnxruntime")}

    def close(self) -> None:
        self.session = None


class TorchReferenceRunner:
    runtime = "PyTorch FP32 CPU"

    def __init__(self, path: Path, task: str, threads: int) -> None:
        import torch

        from backends.digits_cnn import is_digits_cnn, load_module

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


def open_tensor_runner(fmt: str, path: Path, task: str, threads: int = 2) -> TensorRunner:
    if fmt == "onnx":
        return OnnxSessionRunner(path, task, threads)
    if fmt == "hf":
        return TorchReferenceRunner(path, task, threads)
    raise ValueError(f"No runner can load {fmt} {task} models yet.")
