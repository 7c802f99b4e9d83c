"""ONNX Runtime sessions for encoder and classifier graphs (the EncoderClassifierRunner interface).

Standalone (onnxruntime and numpy only): it is also the runner of a device-run bundle."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np


def import_runtime() -> None:
    """A device bundle's driver imports the runtime first, so the model's memory is measured apart."""
    import onnxruntime  # noqa: F401


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


def runtime_versions() -> dict[str, str]:
    return {"onnxruntime": importlib.metadata.version("onnxruntime")}


def load(path: Path, task: str, threads: int = 2) -> OnnxSessionRunner:
    return OnnxSessionRunner(path, task, threads)
