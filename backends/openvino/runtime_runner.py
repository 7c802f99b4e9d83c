"""Encoder and classifier IR in the OpenVINO runtime (the EncoderClassifierRunner interface), with
a performance hint (LATENCY by default; THROUGHPUT is a benchmark option recorded in the result).

Standalone (openvino and numpy only): it is also the runner of a device-run bundle."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any

import numpy as np

DEVICE = "CPU"
HINTS = ("LATENCY", "THROUGHPUT")
DEFAULT_HINT = HINTS[0]
# openvino-tokenizers' IRs, saved beside an LLM's model IR.
TOKENIZER_IRS = ("openvino_tokenizer.xml", "openvino_detokenizer.xml")


def import_runtime() -> None:
    """A device bundle's driver imports the runtime first, so the model's memory is measured apart."""
    import openvino  # noqa: F401


def model_xml(path: Path) -> Path:
    if path.is_file():
        return path
    # An LLM folder also holds tokenizer IRs; the model is openvino_model.xml there.
    files = sorted(p for p in path.glob("*.xml") if p.name not in TOKENIZER_IRS)
    if not files:
        raise ValueError(f"{path.name} holds no OpenVINO IR (.xml)")
    return files[0]


class OpenVINORuntimeRunner:
    def __init__(self, path: Path, task: str, threads: int, hint: str = DEFAULT_HINT) -> None:
        import openvino as ov

        if hint not in HINTS:
            raise ValueError(f"Unknown OpenVINO performance hint {hint!r}; choose one of {', '.join(HINTS)}.")
        self.task = task
        self.hint = hint
        self.runtime = f"OpenVINO {DEVICE} ({hint})"
        self.core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = self.core.compile_model(self.core.read_model(model_xml(path)), DEVICE, config)
        self.input_names = [i.any_name for i in self.compiled.inputs]
        self.request = self.compiled.create_infer_request()
        # LATENCY compiles one stream: one request at a time is how it is meant to run. THROUGHPUT
        # splits the threads into streams and asks for this many requests in flight to fill them.
        self.parallel_requests = (int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
                                  if hint == "THROUGHPUT" else 1)

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer({k: feeds[k] for k in self.input_names})
        return np.asarray(result[self.compiled.outputs[0]], dtype=np.float32)

    def run_parallel(self, feeds: dict[str, np.ndarray], batches: int) -> float:
        """Seconds to run `batches` copies of one batch with parallel_requests requests in flight
        (an AsyncInferQueue), as an application serving many callers would: the throughput of the
        THROUGHPUT hint. Each batch's own latency is longer than a single request's, so latency
        percentiles come from raw(), one request at a time."""
        import openvino as ov

        queue = ov.AsyncInferQueue(self.compiled, self.parallel_requests)
        inputs = {k: feeds[k] for k in self.input_names}
        start = time.perf_counter()
        for _ in range(batches):
            queue.start_async(inputs)  # blocks while every request is busy
        queue.wait_all()
        return time.perf_counter() - start

    def versions(self) -> dict[str, str]:
        return runtime_versions() | {"performance hint": self.hint}

    def device(self) -> dict[str, str]:
        return device_description(self.core)

    def close(self) -> None:
        self.request = None
        self.compiled = None
        self.core = None


def load(path: Path, task: str, threads: int = 2, performance_hint: str = DEFAULT_HINT) -> OpenVINORuntimeRunner:
    return OpenVINORuntimeRunner(path, task, threads, performance_hint)


def runtime_versions() -> dict[str, str]:
    return {"openvino": importlib.metadata.version("openvino")}


def device_description(core: Any, device: str = DEVICE) -> dict[str, str]:
    """What the fingerprint records of an OpenVINO device: its name, the CPU as its plugin sees
    it, and the plugin's build (a CPU plugin of another release may pick other kernels)."""
    plugin = core.get_versions(device)[device]
    return {"runtime": "OpenVINO", "device": device,
            "full_device_name": str(core.get_property(device, "FULL_DEVICE_NAME")),
            "plugin": plugin.description, "plugin_build": plugin.build_number,
            "openvino": importlib.metadata.version("openvino")}
