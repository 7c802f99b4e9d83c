"""Encoder and classifier IR in the OpenVINO runtime (the EncoderClassifierRunner interface), with
a performance hint (LATENCY by default; THROUGHPUT is a benchmark option recorded in the result)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from backends.openvino.import_check import TOKENIZER_IRS

DEVICE = "CPU"
HINTS = ("LATENCY", "THROUGHPUT")


def model_xml(path: Path) -> Path:
    if path.is_file():
        return path
    # An LLM folder also holds tokenizer IRs; the model is openvino_model.xml there.
    files = sorted(p for p in path.glob("*.xml") if p.name not in TOKENIZER_IRS)
    if not files:
        raise ValueError(f"{path.name} holds no OpenVINO IR (.xml)")
    return files[0]


class OpenVINORuntimeRunner:
    def __init__(self, path: Path, task: str, threads: int, hint: str = "LATENCY") -> None:
        import openvino as ov

        self.task = task
        self.hint = hint
        self.runtime = f"OpenVINO {DEVICE} ({hint})"
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(core.read_model(model_xml(path)), DEVICE, config)
        self.input_names = [i.any_name for i in self.compiled.inputs]
        self.request = self.compiled.create_infer_request()

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer({k: feeds[k] for k in self.input_names})
        return np.asarray(result[self.compiled.outputs[0]], dtype=np.float32)

    def versions(self) -> dict[str, str]:
        return runtime_versions() | {"performance hint": self.hint}

    def close(self) -> None:
        self.request = None
        self.compiled = None


def load(path: Path, task: str, threads: int = 2) -> OpenVINORuntimeRunner:
    return OpenVINORuntimeRunner(path, task, threads)


def runtime_versions() -> dict[str, str]:
    return {"openvino": importlib.metadata.version("openvino")}
