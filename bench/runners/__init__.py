"""Runners: one small module per runtime, all with the interface in `base.Runner`.

`open_runner(format, path)` picks the module by the variant's format and imports its toolkit
only then. Runners run inside job processes, never in the app.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from bench.runners.base import Runner

RUNNER_MODULES = {"gguf": "bench.runners.llamacpp", "hf": "bench.runners.reference",
                  "onnx-genai": "bench.runners.ortgenai"}


def open_runner(fmt: str, path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> Runner:
    """all_logits=False for speed and memory runs: keeping logits for every position costs
    n_ctx x vocab floats (200 MB for SmolLM2 at 1,024 tokens), which is not the model's cost."""
    if fmt not in RUNNER_MODULES:
        raise ValueError(f"No runner can load {fmt} models yet.")
    module = importlib.import_module(RUNNER_MODULES[fmt])
    return module.load(path, threads=threads, n_ctx=n_ctx, all_logits=all_logits)
