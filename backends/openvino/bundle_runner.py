"""A device-run bundle's runner for OpenVINO IR LLMs (copied into bundles as runners/openvino.py).

Standalone: openvino, openvino-genai (with the openvino-tokenizers it installs), numpy and the
standard library, never the catalog, nor optimum-intel or torch. It measures as the catalog's own
runner does (backends/openvino/llm_runner.py): speed through OpenVINO GenAI's LLMPipeline and its
own perf metrics, with prefix caching off so each run prefills from an empty cache; next-token
logits at every position from the stateful IR itself (OpenVINO's runtime, state reset before each
window, f32 inference precision, as the catalog's quality runs use), which is what optimum-intel's
model does underneath; generations through LLMPipeline and the folder's tokenizer IRs.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

DEVICE = "CPU"
MODEL_XML = "openvino_model.xml"


def import_runtime() -> None:
    import openvino  # noqa: F401 - counted before the model loads
    import openvino_genai  # noqa: F401


class OpenVINOBundleRunner:
    runtime = f"OpenVINO {DEVICE}"

    def __init__(self, path: Path, threads: int, all_logits: bool) -> None:
        import openvino as ov

        self.ov = ov
        self.folder = path.parent if path.is_file() else path
        self.threads = threads
        self.request = None
        self.pipe = None
        if all_logits:
            compiled = ov.Core().compile_model(str(self.folder / MODEL_XML), DEVICE, {
                "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32"})
            self.inputs = {port.get_any_name() for port in compiled.inputs}
            self.request = compiled.create_infer_request()
        else:
            self.pipe = self._pipeline(INFERENCE_NUM_THREADS=threads, PERFORMANCE_HINT="LATENCY")

    def _pipeline(self, **properties: Any) -> Any:
        import openvino_genai as og

        scheduler = og.SchedulerConfig()
        scheduler.enable_prefix_caching = False  # a repeated prompt would skip its prefill
        return og.LLMPipeline(str(self.folder), DEVICE, scheduler_config=scheduler, **properties)

    def logits(self, ids: list[int]) -> Any:
        import numpy as np

        assert self.request is not None, "opened for speed runs only"
        n = len(ids)
        feed = {"input_ids": np.asarray([ids], dtype=np.int64),
                "attention_mask": np.ones((1, n), dtype=np.int64)}
        if "position_ids" in self.inputs:
            feed["position_ids"] = np.arange(n, dtype=np.int64)[None, :]
        if "beam_idx" in self.inputs:
            feed["beam_idx"] = np.zeros(1, dtype=np.int32)
        self.request.reset_state()  # a stateful IR keeps its KV cache between calls
        self.request.infer(feed)
        return np.array(self.request.get_tensor("logits").data[0], dtype=np.float32, copy=True)

    def _generate_ids(self, ids: list[int], n: int) -> Any:
        import numpy as np
        import openvino_genai as og

        config = og.GenerationConfig(max_new_tokens=n, do_sample=False)
        config.min_new_tokens, config.ignore_eos = n, True  # a timed run is never cut short by end-of-text
        return self.pipe.generate(self.ov.Tensor(np.asarray([ids], dtype=np.int64)), config)

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        """GenAI's own figures: time to first token, and the duration of each later token."""
        metrics = self._generate_ids(ids, n).perf_metrics
        return metrics.get_ttft().mean / 1000, [d / 1e6 for d in list(metrics.raw_metrics.m_durations)]

    def generate(self, prompt: str, max_tokens: int) -> str:
        import openvino_genai as og

        if self.pipe is None:  # f32, as the logits above
            self.pipe = self._pipeline(INFERENCE_NUM_THREADS=self.threads, INFERENCE_PRECISION_HINT="f32")
        return str(self.pipe.generate(prompt, og.GenerationConfig(max_new_tokens=max_tokens, do_sample=False)))

    def device(self) -> dict[str, str]:
        core = self.ov.Core()
        return {"target": self.runtime, "device": DEVICE,
                "device_name": str(core.get_property(DEVICE, "FULL_DEVICE_NAME"))}

    def versions(self) -> dict[str, str]:
        out = {}
        for package in ("openvino", "openvino-genai", "openvino-tokenizers"):
            try:
                out[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                out[package] = "missing"
        return out

    def close(self) -> None:
        self.pipe = None
        self.request = None


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> OpenVINOBundleRunner:
    return OpenVINOBundleRunner(Path(path), threads, all_logits)
