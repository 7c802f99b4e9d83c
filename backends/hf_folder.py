"""Hugging Face folders (config.json + safetensors): validation and the metadata we keep."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.safetensors_check import parameter_count
from catalog.errors import InvalidInputError
from catalog.files import PICKLE_SUFFIXES

TASK_BY_SUFFIX = [
    ("ForCausalLM", "text-generation"),
    ("ForConditionalGeneration", "text-generation"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForImageClassification", "image-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("Model", "feature-extraction"),
]


@dataclass
class HFInfo:
    architecture: str | None
    model_type: str | None
    task: str | None
    param_count: int
    context_length: int | None
    license: str | None
    needs_remote_code: bool
    config: dict[str, Any]


def check_folder(folder: Path) -> list[Path]:
    """The folder's safetensors files, or a sentence saying why it cannot be imported."""
    if not (folder / "config.json").is_file():
        raise InvalidInputError(
            f"{folder.name} has no config.json, so it is not a Hugging Face model folder; "
            "add the config or import the model's GGUF file instead."
        )
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise InvalidInputError(
                f"{folder.name} holds only pickle weights ({pickles[0]}), which are never loaded "
                "here because they can run code; convert them to safetensors first."
            )
        raise InvalidInputError(
            f"{folder.name} has no .safetensors weights; add them, then import again."
        )
    return weights


def _license_from_readme(folder: Path) -> str | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    head = readme.read_text(errors="replace")[:4000]
    match = re.search(r"^license:\s*([\w.\-]+)", head, re.MULTILINE)
    return match.group(1) if match else None


def read_info(folder: Path) -> HFInfo:
    weights = check_folder(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except ValueError:
        raise InvalidInputError(f"{folder.name}/config.json is not valid JSON; fix or replace it.") from None
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else None
    task = next((t for suffix, t in TASK_BY_SUFFIX if arch and arch.endswith(suffix)), None)
    context = cfg.get("max_position_embeddings") or cfg.get("n_positions") or cfg.get("seq_length")
    return HFInfo(
        architecture=arch,
        model_type=cfg.get("model_type"),
        task=task,
        param_count=parameter_count(weights),
        context_length=int(context) if context else None,
        license=_license_from_readme(folder),
        needs_remote_code="auto_map" in cfg,
        config=cfg,
    )
