"""GGUF -> Hugging Face safetensors folder, by dequantizing with transformers' GGUF loader.

Why: the other toolkits (ONNX builders, OpenVINO, MLX) start from a Hugging Face folder, so a
GGUF-only model (like the demo) must first become one. transformers reads the GGUF and
dequantizes every tensor, but then marks the model as "quantized with gguf" and refuses
save_pretrained; rebuilding a plain model from the same config and loading the dense state
dict into it gives an ordinary, saveable model.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")

# Offline for good: this app never downloads a model. huggingface_hub reads these when first
# imported, so set them before importing transformers; local_files_only below covers the case
# where the app imported it earlier without them.
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


class DequantizeError(RuntimeError):
    """The GGUF could not be turned into a Hugging Face folder; the message is one sentence."""


def _say(log: Callable[[str], None] | None, message: str) -> None:
    logger.info("%s", message)
    if log is not None:
        log(message)


def dequantize_to_hf(
    gguf_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    dtype: str = "float32",
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write a Hugging Face model folder (safetensors + tokenizer + chat template) for a GGUF.

    out_dir must not exist or be empty. The folder is assembled next to it and renamed into
    place at the end, so a crash never leaves a half-written model that looks complete.
    Returns the files written. Never touches the network.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    src = Path(gguf_path).resolve()
    out = Path(out_dir)
    if not src.is_file():
        raise DequantizeError(f"The GGUF file {src} does not exist; check the path.")
    if out.exists() and any(out.iterdir()):
        raise DequantizeError(f"The folder {out} is not empty; choose a new output folder.")

    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    start = time.monotonic()
    with _parsed_once():
        # Validate with our own reader first, before the heavy imports: its errors are sentences,
        # transformers' are tracebacks. The parse it makes is the one transformers then reads.
        special = _tokenizer_settings(src)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = getattr(torch, dtype)
        # The GGUF's folder is the "repo"; gguf_file as an absolute path is read as a local file.
        load = {"gguf_file": str(src), "local_files_only": True}
        _say(log, f"reading and dequantizing {src.name}")
        try:
            tokenizer = _portable_tokenizer(AutoTokenizer.from_pretrained(str(src.parent), **load), special)
            loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), dtype=torch_dtype, **load)
        except (ValueError, KeyError, OSError, NotImplementedError) as exc:
            # transformers supports a fixed list of GGUF architectures and tensor types.
            raise DequantizeError(
                f"transformers could not load {src.name} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "this architecture or quantization type is not supported for dequantization."
            ) from exc

    config = loaded.config
    state = loaded.state_dict()
    del loaded  # holds a second copy of the weights
    # The loader tags the config as GGUF-quantized; the dense copy must not carry that tag,
    # or the saved folder would claim a quantization it does not have.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied output embeddings appear as "missing" lm_head.weight and are fine; anything else is not.
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    real_missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if real_missing or unexpected:
        raise DequantizeError(
            f"The weights read from {src.name} do not fit the model built from its config "
            f"(missing {real_missing[:3]}, unexpected {list(unexpected)[:3]}); report this model as unsupported."
        )
    model.tie_weights()
    model.eval()
    del state
    _say(log, f"dequantized in {time.monotonic() - start:.1f} s; writing safetensors ({dtype})")

    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        # Writes tokenizer.json, tokenizer_config.json and chat_template.jinja, so the folder is
        # usable for chat on its own.
        tokenizer.save_pretrained(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sorted(p for p in out.rglob("*") if p.is_file())
    _say(log, f"wrote {len(files)} files to {out} in {time.monotonic() - start:.1f} s")
    return files


@contextmanager
def _parsed_once() -> Iterator[None]:
    """Within the block, gguf-py parses each file once and builds each tensor-name map once.
    transformers opens the GGUF four times (the tokenizer's config and vocabulary, the model's
    config and weights), and a reader parses every vocabulary entry into its own array: 3.6 s a
    parse for the demo's 49,152 tokens, whatever the model's size; it also builds the same name map
    for each of the model's 397 modules (7.7 s). The reader maps the file read-only and the map is
    only read, so one of each serves every call (the demo: 42.6 -> 23.2 s, the same bytes written)."""
    import gguf

    original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], gguf.GGUFReader] = {}

    def shared_reader(path: str | os.PathLike[str], mode: str = "r") -> gguf.GGUFReader:
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    # transformers and gguf_meta import both names from gguf at each call
    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, functools.cache(original_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


def _tokenizer_settings(src: Path) -> dict[str, object]:
    """Special-token ids and BOS/EOS flags as the GGUF declares them (None where absent)."""
    from backends.llamacpp.gguf_meta import GGUFError, open_reader

    try:
        reader = open_reader(src)
    except GGUFError as exc:
        raise DequantizeError(str(exc)) from exc

    def value(key: str) -> object:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    return {
        "model": value("tokenizer.ggml.model"),
        "ids": {
            "bos_token": value("tokenizer.ggml.bos_token_id"),
            "eos_token": value("tokenizer.ggml.eos_token_id"),
            "unk_token": value("tokenizer.ggml.unknown_token_id"),
            "pad_token": value("tokenizer.ggml.padding_token_id"),
        },
        "add_bos": value("tokenizer.ggml.add_bos_token"),
        "add_eos": value("tokenizer.ggml.add_eos_token"),
    }


def _portable_tokenizer(gguf_tokenizer: Any, special: dict[str, Any]) -> Any:
    """Re-wrap transformers' GGUF tokenizer as a plain tokenizers-backed one.

    transformers 5.5 builds the right tokenizers pipeline from GGUF but labels llama-arch
    files with a class (CodeLlamaTokenizer, seen with the demo's GPT-2 BPE vocabulary) whose
    constructor replaces the pre-tokenizer and decoder on reload, and it takes special tokens
    from that class instead of the file (eos came out as <|im_start|>). A generic
    TokenizersBackend saves tokenizer.json verbatim; special tokens and BOS/EOS insertion are
    set from the GGUF's own keys.
    """
    import json

    from tokenizers import Tokenizer, decoders, processors
    from transformers import PreTrainedTokenizerFast

    backend = gguf_tokenizer.backend_tokenizer
    # The CodeLlama label also appends its infill tokens (<FILL_ME>, ...) past the GGUF's
    # vocabulary; llama.cpp's converter then refuses the folder. Keep only the file's own tokens.
    base_size = backend.get_vocab_size(with_added_tokens=False)
    spec = json.loads(backend.to_str())
    spec["added_tokens"] = [t for t in spec.get("added_tokens", []) if t["id"] < base_size]
    backend = Tokenizer.from_str(json.dumps(spec))
    names = {
        role: backend.id_to_token(int(token_id))
        for role, token_id in special["ids"].items()
        if token_id is not None and backend.id_to_token(int(token_id)) is not None
    }
    if special["model"] == "gpt2":
        backend.decoder = decoders.ByteLevel()
    if special["add_bos"] is not None or special["add_eos"] is not None:
        bos = names.get("bos_token") if special["add_bos"] else None
        eos = names.get("eos_token") if special["add_eos"] else None
        single = [t for t in (bos, "$A:0", eos) if t]
        pair = [t for t in (bos, "$A:0", eos, bos and f"{bos}:1", "$B:1", eos and f"{eos}:1") if t]
        backend.post_processor = processors.TemplateProcessing(
            single=single, pair=pair,
            special_tokens=[(t, backend.token_to_id(t)) for t in {bos, eos} if t],
        )
    return PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=gguf_tokenizer.chat_template, **names)
