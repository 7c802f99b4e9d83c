"""QDQ and EPContext models on the QNN HTP backend (the EncoderClassifierRunner interface), or the
same QDQ model on ONNX Runtime's CPU EP (the benchmark option `qnn_provider`), for latency next
to each other.

The HTP runs fixed shapes: a batch is run in chunks of the model's batch size, sequence axes are
padded or cut to the model's length, and outputs are cut back to the caller's shape.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from backends.onnxrt.session_runner import model_file
from backends.qnn import ep
from backends.qnn.quantize import fit_feed

log = logging.getLogger(__name__)

PROVIDERS = ("htp", "cpu")
DEFAULT_PROVIDER = PROVIDERS[0]


class QnnRunner:
    def __init__(self, path: Path, task: str, threads: int, provider: str = DEFAULT_PROVIDER) -> None:
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise ValueError(f"Unknown QNN benchmark provider {provider!r}; choose one of {', '.join(PROVIDERS)}.")
        self.task = task
        self.provider = provider
        model = model_file(path)
        self.cpu_nodes = 0
        if provider == "cpu":
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            self.runtime = "ONNX Runtime CPU (QDQ model for QNN)"
        else:
            try:
                self.session = ep.open_without_fallback(model, threads=threads)
                self.runtime = ep.device_label()
            except Exception as exc:  # a variant made with CPU fallback allowed runs partly on the CPU
                if "CPU fallback is off" not in str(exc):
                    raise
                self.session = ep.session(model, fallback=True, threads=threads)
                self.cpu_nodes = sum(1 for n in ep.assignment(self.session) if n["provider"] != ep.EP_NAME)
                self.runtime = f"{ep.device_label()} ({self.cpu_nodes} nodes on the CPU)"
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.shapes = {i.name: [d if isinstance(d, int) else 0 for d in i.shape] for i in inputs}
        self.batch = next((s[0] for s in self.shapes.values() if s and s[0]), 0)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        fitted = fit_feed(feeds, self.shapes)
        out = np.asarray(self.session.run(None, fitted)[0], dtype=np.float32)
        n = len(next(iter(feeds.values())))
        out = out[:n]
        if out.ndim == 3 and "input_ids" in feeds:  # hidden states back to the caller's sequence length
            length = feeds["input_ids"].shape[1]
            out = out[:, :length] if out.shape[1] >= length else np.pad(out, [(0, 0), (0, length - out.shape[1]),
                                                                              (0, 0)])
        return out

    def raw(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: feeds[k] for k in self.input_names}
        total = len(next(iter(feeds.values())))
        step = self.batch or total
        return np.concatenate([self._run({k: v[i:i + step] for k, v in feeds.items()}) for i in range(0, total, step)])

    def versions(self) -> dict[str, str]:
        return ep.versions() | {"qnn provider": self.provider}

    def device(self) -> dict[str, str]:
        return {"runtime": "ONNX Runtime QNN EP" if self.provider == "htp" else "ONNX Runtime CPU EP",
                "device": ep.device_label() if self.provider == "htp" else "CPU", "qnn_sdk": ep.sdk_version(),
                "backend": "HTP" if self.provider == "htp" else "none"}

    def close(self) -> None:
        self.session = None


def load(path: Path, task: str, threads: int = 2, qnn_provider: str = DEFAULT_PROVIDER) -> QnnRunner:
    return QnnRunner(path, task, threads, qnn_provider)


def load_context(path: Path, task: str, threads: int = 2) -> QnnRunner:
    """An EPContext model: only the QNN EP can run it."""
    return QnnRunner(path, task, threads, DEFAULT_PROVIDER)


def runtime_versions() -> dict[str, str]:
    return ep.versions()


def fingerprint_fields() -> dict[str, str]:
    """What a QNN result records beside the machine: the QNN SDK the EP bundles, and the device."""
    return {"qnn_sdk": ep.sdk_version(), "qnn_device": ep.device_label(), "htp_arch": "the simulator's default"
            if ep.device_label() == ep.SIMULATOR else "the device's own"}
