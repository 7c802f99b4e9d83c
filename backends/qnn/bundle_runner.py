"""QDQ and EPContext models on the QNN HTP backend, standalone (onnxruntime, onnxruntime-qnn and
numpy only): a device-run bundle's runner (copied as runners/qnn.py), and the fixed-shape running
the catalog's own runner (backends/qnn/runner.py) is built on.

The HTP runs fixed shapes: a batch is run in chunks of the model's batch size, sequence axes are
padded or cut to the model's length, and outputs are cut back to the caller's shape.

On a Snapdragon laptop the HTP is the NPU; on x86_64 it is a simulator, and the runtime says so.
Two packagings of the QNN EP exist: onnxruntime-qnn 2.x is a plugin registered beside onnxruntime
(what the catalog installs, tested here); older onnxruntime-qnn wheels (1.x, Windows on ARM) build
QNNExecutionProvider into onnxruntime itself, with the HTP library named by backend_path.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

EP_NAME = "QNNExecutionProvider"
SIMULATOR = "QNN HTP simulator"


def import_runtime() -> None:
    """A device bundle's driver imports the runtime first, so the model's memory is measured apart."""
    import onnxruntime  # noqa: F401


def device_label() -> str:
    """What the HTP backend is on this machine: the simulator on x86_64, the NPU on Snapdragon."""
    return SIMULATOR if platform.machine().lower() in ("x86_64", "amd64") else "QNN HTP"


def model_file(path: Path) -> Path:
    # as backends/onnxrt/session_runner.py's: each bundle runner travels alone, so neither imports the other
    if path.is_file():
        return path
    files = sorted(path.glob("*.onnx"))
    if not files:
        raise ValueError(f"{path.name} holds no .onnx file")
    return files[0]


def fit_feed(feed: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """A feed made to the model's fixed shapes: sequence axes padded with zeros or cut (a mask of
    0 marks padding), a batch axis filled by repeating the last row. The caller cuts outputs back."""
    out = {}
    for name, want in shapes.items():
        value = feed[name]
        for axis, size in enumerate(want):
            have = value.shape[axis]
            if size == have or size == 0:
                continue
            if size < have:
                value = np.take(value, range(size), axis=axis)
            elif axis == 0:
                value = np.concatenate([value, np.repeat(np.take(value, [-1], axis=0), size - have, axis=0)])
            else:
                pad = [(0, 0)] * value.ndim
                pad[axis] = (0, size - have)
                value = np.pad(value, pad)
        out[name] = value
    return out


def session_options(threads: int, fallback: bool) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if fallback else "1")
    return options


def htp_session(model: Path, threads: int = 1) -> Any:
    """An InferenceSession with every node on the HTP (CPU fallback off), through whichever QNN EP
    this machine has."""
    import onnxruntime as ort

    options = session_options(threads, fallback=False)
    try:
        import onnxruntime_qnn
    except ImportError:  # the QNN EP built into onnxruntime (onnxruntime-qnn 1.x)
        if EP_NAME not in ort.get_available_providers():
            raise SystemExit("error: no QNN execution provider here; install onnxruntime-qnn.") from None
        backend = "QnnHtp.dll" if sys.platform == "win32" else "libQnnHtp.so"
        return ort.InferenceSession(str(model), options, providers=[(EP_NAME, {"backend_path": backend})])
    options.add_provider_for_devices(plugin_devices(), {"backend_path": onnxruntime_qnn.get_qnn_htp_path()})
    return ort.InferenceSession(str(model), options)


def plugin_devices() -> list[Any]:
    """The QNN devices of the onnxruntime-qnn plugin, registered with onnxruntime on first use."""
    import onnxruntime as ort
    import onnxruntime_qnn

    if not any(d.ep_name == EP_NAME for d in ort.get_ep_devices()):
        ort.register_execution_provider_library(EP_NAME, onnxruntime_qnn.get_library_path())
    return [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]


def sdk_version() -> str:
    """The QNN SDK the wheel bundles (its build info), e.g. "2.51.0"."""
    try:
        from onnxruntime_qnn import build_and_package_info

        return str(getattr(build_and_package_info, "qnn_version", "unknown"))
    except ImportError:
        return "missing"


def versions() -> dict[str, str]:
    out = {}
    for dist in ("onnxruntime", "onnxruntime-qnn"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out | {"qnn_sdk": sdk_version()}


class FixedShapeRunner:
    """The EncoderClassifierRunner interface over a session of fixed input shapes."""

    runtime = SIMULATOR
    provider = "htp"

    def __init__(self, session: Any, task: str) -> None:
        self.task = task
        self.session = session
        inputs = session.get_inputs()
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
        return versions() | {"qnn provider": self.provider}

    def device(self) -> dict[str, str]:
        return {"runtime": "ONNX Runtime QNN EP", "device": device_label(), "qnn_sdk": sdk_version(),
                "backend": "HTP"}

    def close(self) -> None:
        self.session = None


def load(path: Path, task: str, threads: int = 2) -> FixedShapeRunner:
    """The bundle's opener: a QDQ or EPContext model on the HTP with CPU fallback off."""
    runner = FixedShapeRunner(htp_session(model_file(path), threads), task)
    runner.runtime = device_label()
    return runner
