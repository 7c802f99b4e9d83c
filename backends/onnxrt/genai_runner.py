"""ONNX Runtime GenAI folders (genai_config.json + model.onnx), on the CPU.

Standalone (onnxruntime-genai, numpy and the standard library): device bundles carry this file as
their runner of ONNX Runtime GenAI variants (bench/run_bundle.py).

The decoder the model builder writes returns logits for every position it is fed, so one
prefill (`append_tokens`) gives the next-token logits at all positions of a window, exactly as
the other runners do; decoding then feeds one token at a time through ORT GenAI's own KV cache.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from pathlib import Path

import numpy as np


def import_runtime() -> None:
    """A device bundle's driver imports the runtime first, so the model's memory is measured apart."""
    import onnxruntime_genai  # noqa: F401


def genai_folder(path: Path) -> Path:
    """The variant's folder: main_file() names model.onnx, the runtime wants its folder."""
    path = Path(path)
    return path.parent if path.is_file() else path


class OrtGenAIRunner:
    runtime = "ONNX Runtime GenAI CPU"

    def __init__(self, path: Path, threads: int, n_ctx: int) -> None:
        import onnxruntime_genai as og

        self.og = og
        self.n_ctx = n_ctx
        config = og.Config(str(genai_folder(path)))
        # The thread count is part of the protocol; the builder leaves it to ORT (all cores).
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        self.tok = og.Tokenizer(self.model)

    def _generator(self, max_length: int, min_length: int = 0):
        params = self.og.GeneratorParams(self.model)
        # The KV buffer is sized by max_length (past_present_share_buffer), so keep it tight.
        params.set_search_options(max_length=max_length, min_length=min_length, do_sample=False, num_beams=1)
        return self.og.Generator(self.model, params)

    def tokenize(self, text: str) -> list[int]:
        # The builder's tokenizer config adds no BOS for SmolLM2, matching transformers'.
        return [int(i) for i in self.tok.encode(text)]

    def logits(self, ids: list[int]) -> np.ndarray:
        gen = self._generator(len(ids) + 1)
        gen.append_tokens(np.asarray(ids, dtype=np.int32))
        out = np.array(gen.get_output("logits"), dtype=np.float32, copy=True)[0]
        del gen
        if out.shape[0] != len(ids):  # a model built with prune_lm_head gives only the last position
            raise RuntimeError(f"the model returned logits for {out.shape[0]} of {len(ids)} positions")
        return out

    def generate(self, prompt: str, max_tokens: int) -> str:
        ids = self.tokenize(prompt)
        gen = self._generator(len(ids) + max_tokens)
        gen.append_tokens(np.asarray(ids, dtype=np.int32))
        new: list[int] = []
        while not gen.is_done() and len(new) < max_tokens:
            gen.generate_next_token()
            new.append(int(gen.get_next_tokens()[0]))
        del gen
        eos = set(int(t) for t in self.tok.eos_token_ids)
        return self.tok.decode(np.asarray([t for t in new if t not in eos], dtype=np.int32))

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        # min_length keeps an early end-of-text from shortening a timed run.
        gen = self._generator(len(ids) + n, min_length=len(ids) + n)
        start = time.perf_counter()
        gen.append_tokens(np.asarray(ids, dtype=np.int32))  # prefill runs here
        gen.generate_next_token()                           # picks from the prefill's logits
        gen.get_next_tokens()
        ttft = time.perf_counter() - start
        steps = []
        for _ in range(n - 1):
            t = time.perf_counter()
            gen.generate_next_token()                       # one decoder run + greedy pick
            gen.get_next_tokens()
            steps.append(time.perf_counter() - t)
        del gen
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return runtime_versions()

    def close(self) -> None:
        del self.tok
        del self.model


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> OrtGenAIRunner:
    return OrtGenAIRunner(path, threads, n_ctx)


def runtime_versions() -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in ("onnxruntime-genai", "onnxruntime")}
