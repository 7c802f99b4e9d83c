"""QDQ and EPContext models on the QNN HTP backend (the EncoderClassifierRunner interface), or the
same QDQ model on ONNX Runtime's CPU EP (the benchmark option `qnn_provider`), for latency next
to each other. The fixed-shape running is the bundle runner's (backends/qnn/bundle_runner.py);
this adds the catalog's refusal sentences, the CPU provider and a model made with fallback on.
"""

from __future__ import annotations

import logging
from pathlib import Path

from backends.qnn import ep
from backends.qnn.bundle_runner import FixedShapeRunner, model_file, session_options

log = logging.getLogger(__name__)

PROVIDERS = ("htp", "cpu")
DEFAULT_PROVIDER = PROVIDERS[0]


class QnnRunner(FixedShapeRunner):
    def __init__(self, path: Path, task: str, threads: int, provider: str = DEFAULT_PROVIDER) -> None:
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise ValueError(f"Unknown QNN benchmark provider {provider!r}; choose one of {', '.join(PROVIDERS)}.")
        model = model_file(path)
        self.cpu_nodes = 0
        if provider == "cpu":
            session = ort.InferenceSession(str(model), session_options(threads, fallback=True),
                                           providers=["CPUExecutionProvider"])
            runtime = "ONNX Runtime CPU (QDQ model for QNN)"
        else:
            try:
                session = ep.open_without_fallback(model, threads=threads)
                runtime = ep.device_label()
            except Exception as exc:  # a variant made with CPU fallback allowed runs partly on the CPU
                if "CPU fallback is off" not in str(exc):
                    raise
                session = ep.session(model, fallback=True, threads=threads)
                self.cpu_nodes = sum(1 for n in ep.assignment(session) if n["provider"] != ep.EP_NAME)
                runtime = f"{ep.device_label()} ({self.cpu_nodes} nodes on the CPU)"
        super().__init__(session, task)
        self.provider = provider
        self.runtime = runtime

    def device(self) -> dict[str, str]:
        if self.provider == "htp":
            return super().device()
        return {"runtime": "ONNX Runtime CPU EP", "device": "CPU", "qnn_sdk": ep.sdk_version(), "backend": "none"}


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
