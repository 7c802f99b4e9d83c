"""Importing an existing MLX folder: config.json with MLX's quantization metadata (a "quantization"
block with group_size and bits) and safetensors weights whose quantized layers carry `.scales`.
A folder without that block is an ordinary Hugging Face folder and is left to that check.

Checked from the headers alone before any job exists: every weight file the index names is
there, every file is sound safetensors, and the quantized layers' scales are present; a folder
with MLX metadata but missing weights is refused in one sentence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backends.hf.folder import read_config
from backends.hf.safetensors_check import read_header
from backends.mlx.quant import float_layers
from catalog.errors import InvalidInputError

INDEX = "model.safetensors.index.json"


def mlx_quantization(config: dict[str, Any]) -> dict[str, Any] | None:
    q = config.get("quantization")
    return q if isinstance(q, dict) and "bits" in q and "group_size" in q else None


def _config(path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((path / "config.json").read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def recognise(path: Path) -> bool:
    if not path.is_dir() or not (path / "config.json").is_file():
        return False
    config = _config(path)
    return config is not None and mlx_quantization(config) is not None


def headers(folder: Path, shown_as: str = "") -> list[dict[str, Any]]:
    """The safetensors headers of an MLX folder; one sentence when weights are missing or unsound."""
    name = shown_as or folder.name
    files = sorted(folder.glob("*.safetensors"))
    index = folder / INDEX
    if index.is_file():
        try:
            named = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidInputError(f"{name}: {INDEX} is not a valid weight index; export the model again.") from None
        missing = sorted(n for n in named if not (folder / n).is_file())
        if missing:
            raise InvalidInputError(f"{name} has MLX quantization metadata but its weights {missing[0]} are missing; "
                                    "import the folder with every .safetensors file its index names.")
    if not files:
        raise InvalidInputError(f"{name} has MLX quantization metadata but no .safetensors weights; import the "
                                "folder together with its weights.")
    return [read_header(f) for f in files]


def check(path: Path) -> Path:
    from catalog.files import list_model_files

    read_config(path)
    found = headers(path)
    names = {n for h in found for n in h if n != "__metadata__"}
    if not any(n.endswith(".scales") for n in names):
        raise InvalidInputError(f"{path.name} says it is MLX-quantized but its weights hold no quantization scales; "
                                "the weights belong to another model or were saved unquantized.")
    list_model_files(path)  # refuses links out of the folder now, not inside the job
    return path


def describe(staged: Path, meta: Any, recipe: dict[str, Any], license_default: str | None
             ) -> tuple[Any, str, str, dict[str, Any]]:
    config = read_config(staged)
    q = mlx_quantization(config)
    if q is None:
        raise InvalidInputError("The imported files hold no MLX quantization metadata.")
    found = headers(staged)
    mixed = sorted({int(v["bits"]) for v in q.values() if isinstance(v, dict) and "bits" in v})
    mode = str(q.get("mode", "affine"))
    if mode != "affine":
        precision = mode.upper()
    elif mixed and mixed != [int(q["bits"])]:
        precision = f"mixed {'/'.join(map(str, mixed))}-bit g{q['group_size']}"
    else:
        precision = f"{q['bits']}-bit g{q['group_size']}"
    meta.architecture = config.get("model_type") or "mlx"
    meta.task = "text-generation"
    meta.license = license_default
    meta.context_length = config.get("max_position_embeddings")
    facts = {"model_type": config.get("model_type"), "quantization": {k: v for k, v in q.items()
                                                                      if not isinstance(v, dict)},
             "float_matrices": len(float_layers(found))}
    return meta, "mlx", precision, facts
