"""Importing a Hugging Face folder: config.json and safetensors weights (pickles are never
loaded), described from its config, README and weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.hf.folder import check_folder, read_info
from catalog.files import list_model_files
from catalog.sources import SourceMeta

# config.json's dtype names, as the catalog labels precisions (the safetensors headers' names).
DTYPE_LABELS = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def recognise(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def check(path: Path) -> Path:
    check_folder(path)
    list_model_files(path)  # refuses links out of the folder now, not inside the job
    return path


def check_snapshot(snapshot: Path, repo_id: str) -> None:
    check_folder(snapshot, repo_id)  # the repo id, not the snapshot's commit hash


def describe(staged: Path, meta: SourceMeta, recipe: dict[str, Any], license_default: str | None
             ) -> tuple[SourceMeta, str, str, dict[str, Any]]:
    info = read_info(staged, shown_as(recipe))
    if info.needs_remote_code and not recipe.get("trust_remote_code"):
        extra_note = "needs its own code (auto_map); conversions refuse it unless remote code is allowed"
    else:
        extra_note = ""
    meta.name = recipe.get("name") or Path(recipe.get("repo_id") or recipe["path"]).name
    meta.architecture = info.architecture
    meta.task = info.task
    meta.param_count = info.param_count
    meta.context_length = info.context_length
    meta.license = info.license or license_default
    dtype = str(info.config.get("torch_dtype") or info.config.get("dtype") or "")
    if dtype:  # labelled as every conversion labels its output (F32, F16, BF16)
        dtype = DTYPE_LABELS.get(dtype, dtype)
    else:  # older configs name no dtype: the weights' own dtype says it
        from backends.hf.safetensors_check import main_dtype

        dtype = main_dtype(sorted(staged.glob("*.safetensors"))) or "unknown"
    extra = {"model_type": info.model_type, "needs_remote_code": info.needs_remote_code,
             "trust_remote_code": bool(recipe.get("trust_remote_code")), "note": extra_note}
    return meta, "hf", dtype, extra


def shown_as(recipe: dict[str, Any]) -> str:
    """The model as the user knows it: its repo id or the name of the path they gave, never the
    job's staging folder ("files") or a cache snapshot's commit hash."""
    return recipe.get("repo_id") or Path(recipe.get("path") or "").name or recipe.get("name") or "the model"
