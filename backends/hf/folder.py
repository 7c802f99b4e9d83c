"""Hugging Face folders (config.json + safetensors): validation and the metadata we keep."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.hf.safetensors_check import parameter_count
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


def check_folder(folder: Path, shown_as: str = "") -> list[Path]:
    """The folder's safetensors files, or a sentence saying why it cannot be imported. shown_as
    names the folder as the user knows it (a repo id for a cache snapshot, the original folder's
    name for a staged copy); by default the folder's own name."""
    name = shown_as or folder.name
    if not (folder / "config.json").is_file():
        raise InvalidInputError(
            f"{name} has no config.json, so it is not a Hugging Face model folder; "
            "add the config or import the model's GGUF file instead."
        )
    read_config(folder, name)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise InvalidInputError(
                f"{name} holds only pickle weights ({pickles[0]}), which are never loaded "
                "here because they can run code; convert them to safetensors first."
            )
        raise InvalidInputError(
            f"{name} has no .safetensors weights; add them, then import again."
        )
    return weights


def read_config(folder: Path, shown_as: str = "") -> dict[str, Any]:
    """config.json as a dict, or one sentence naming the model as the user knows it."""
    try:
        cfg = json.loads((folder / "config.json").read_text(errors="replace"))
    except ValueError:
        cfg = None
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"The config.json of {shown_as or folder.name} is not a valid JSON object; fix or "
                                "replace it, then import again.")
    return cfg


def _license_from_readme(folder: Path) -> str | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    head = readme.read_text(errors="replace")[:4000]
    match = re.search(r"^license:\s*([\w.\-]+)", head, re.MULTILINE)
    return match.group(1) if match else None


def read_info(folder: Path, shown_as: str = "") -> HFInfo:
    weights = check_folder(folder, shown_as)
    cfg = read_config(folder, shown_as)
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


# Tokenizer and model-card files a converted encoder keeps beside its graph, so it can be run alone.
COMPANION_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "config.json", "README.md", "modules.json", "sentence_bert_config.json")


def copy_companions(src: Path, out: Path) -> None:
    for name in COMPANION_FILES:
        if (src / name).is_file() and not (out / name).exists():
            shutil.copy2(src / name, out / name)
