"""Small real models built from a config, for tests that need a Hugging Face folder."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write a safetensors file by hand (no torch needed)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        for blob in blobs:
            fh.write(blob)


def tiny_hf_folder(folder: Path, seed: int = 0, arch: str = "LlamaForCausalLM") -> Path:
    """A Hugging Face folder: config.json and one safetensors file of random weights."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (folder / "config.json").write_text(json.dumps({
        "architectures": [arch], "model_type": "llama", "hidden_size": 16, "num_hidden_layers": 1,
        "vocab_size": 32, "max_position_embeddings": 128, "torch_dtype": "float32"}))
    write_safetensors(folder / "model.safetensors", {
        "model.embed_tokens.weight": rng.standard_normal((32, 16)),
        "lm_head.weight": rng.standard_normal((32, 16)),
    })
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    return folder


def tiny_gguf(path: Path, arch: str = "llama", name: str | None = None) -> Path:
    """A minimal but valid GGUF written by gguf's own writer: one F32 tensor (and general.name)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    if name is not None:
        writer.add_name(name)
    writer.add_block_count(1)
    writer.add_tensor("probe.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_llama(tokenizer_from: Path, folder: Path) -> Path:
    """A 2-layer Llama of hidden size 64 with random weights and the tokenizer of the Hugging Face
    folder tokenizer_from (the demo's): every runtime converts and benchmarks it in seconds."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = json.loads((tokenizer_from / "config.json").read_text())
    config.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, torch_dtype="float32")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k != "architectures"}))
    model.save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, folder / name)
    return folder
