"""MLX folders (config.json + safetensors, quantized or not) run by mlx-lm, in the causal-LM protocol.

mlx-lm's `load` builds the model; its forward call `model(ids)` returns the next-token logits at
every position, so quality runs score the same token ids as every other runtime. Decoding goes
through mlx-lm's own KV cache (`make_prompt_cache`), one token at a time, greedy, as llama-bench's
"tg" does. Tokens come from the folder's Hugging Face tokenizer, as in every other runner.

The device is MLX's default: the CPU backend on Linux (mlx[cpu]), the Metal GPU on a Mac. The
runtime name says which ("MLX CPU" or "MLX GPU"), so results from a Mac are never charted as this
machine's. The Linux wheel links the reference BLAS and MLX has no thread setting: the protocol's
thread count is recorded but MLX decides how many threads it uses.

Standalone (mlx, mlx-lm, numpy and the standard library): device bundles carry this file as their
runner of MLX variants, for a teammate's Mac (bench/run_bundle.py)."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any

import numpy as np

RUNTIME_PACKAGES = ("mlx", "mlx-lm")


def import_runtime() -> None:
    """A device bundle's driver imports the runtime first, so the model's memory is measured apart."""
    import mlx.core  # noqa: F401
    import mlx_lm  # noqa: F401


def mlx_folder(path: Path) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


class MLXRunner:
    def __init__(self, path: Path, threads: int) -> None:
        import mlx.core as mx
        from mlx_lm import load as mlx_load

        self.mx = mx
        self.threads = threads
        self.folder = mlx_folder(path)
        self.model, wrapper = mlx_load(str(self.folder))
        self.tok = getattr(wrapper, "_tokenizer", wrapper)  # the Hugging Face tokenizer inside mlx-lm's wrapper
        kind = mx.default_device().type
        self.device_type = "gpu" if kind == mx.gpu else "cpu"
        self.runtime = f"MLX {self.device_type.upper()}"
        eos = getattr(wrapper, "eos_token_ids", None) or [self.tok.eos_token_id]
        self.eos = {int(t) for t in eos if t is not None}

    def tokenize(self, text: str) -> list[int]:
        return [int(i) for i in self.tok(text)["input_ids"]]

    def logits(self, ids: list[int]) -> np.ndarray:
        mx = self.mx
        out = self.model(mx.array([ids])).astype(mx.float32)
        mx.eval(out)
        return np.array(out[0], copy=True)

    def _decode(self, ids: list[int], n: int, stop_at_eos: bool) -> tuple[list[int], float, list[float]]:
        """Greedy: prefill ids into a fresh cache, then n-1 single-token steps. Returns the tokens,
        the time to the first one, and each later step's seconds."""
        from mlx_lm.models.cache import make_prompt_cache

        mx = self.mx
        cache = make_prompt_cache(self.model)
        start = time.perf_counter()
        logits = self.model(mx.array([ids]), cache=cache)
        token = int(mx.argmax(logits[0, -1]).item())  # .item() waits for the lazy graph
        ttft = time.perf_counter() - start
        tokens, steps = [token], []
        while len(tokens) < n and not (stop_at_eos and token in self.eos):
            t = time.perf_counter()
            logits = self.model(mx.array([[token]]), cache=cache)
            token = int(mx.argmax(logits[0, -1]).item())
            steps.append(time.perf_counter() - t)
            tokens.append(token)
        return tokens, ttft, steps

    def generate(self, prompt: str, max_tokens: int) -> str:
        tokens, _, _ = self._decode(self.tokenize(prompt), max_tokens, stop_at_eos=True)
        return self.tok.decode([t for t in tokens if t not in self.eos], skip_special_tokens=True)

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        _, ttft, steps = self._decode(ids, n, stop_at_eos=False)
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return runtime_versions()

    def device(self) -> dict[str, str]:
        """What the fingerprint records: MLX's device, and whether Metal was there to use."""
        mx = self.mx
        return {"device": self.device_type, "mlx_device": str(mx.default_device()),
                "metal_available": str(bool(mx.metal.is_available())).lower()}

    def close(self) -> None:
        self.model = None
        try:
            self.mx.clear_cache()
        except AttributeError:
            pass


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> MLXRunner:
    return MLXRunner(path, threads)


def runtime_versions() -> dict[str, str]:
    out = {}
    for p in RUNTIME_PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "missing"
    return out


def generate_once(folder: Path, max_tokens: int = 8) -> dict[str, Any]:
    """The first run every result gets before it may become a variant: mlx-lm's own load and
    generate (greedy), as the exported snippet runs it."""
    from mlx_lm import generate
    from mlx_lm import load as mlx_load

    model, tokenizer = mlx_load(str(folder))
    text = generate(model, tokenizer, prompt="The capital of France is", max_tokens=max_tokens, verbose=False)
    return {"text": text}
