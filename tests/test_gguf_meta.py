"""backends.llamacpp.gguf_meta and backends.llamacpp.gguf_dequant on the real demo model and on damaged files."""

from __future__ import annotations

import logging
import struct
import time
from pathlib import Path

import gguf
import pytest

from backends.llamacpp import gguf_meta
from backends.llamacpp import tools as lt
from backends.llamacpp.gguf_meta import GGUFError
from backends.tools import run_tool
from tests.helpers.models import tiny_gguf

logger = logging.getLogger(__name__)


def _is_one_sentence(message: str) -> bool:
    # File names contain dots, so look for sentence breaks, not dots.
    return message.endswith(".") and ". " not in message and "\n" not in message


def test_demo_metadata(demo_gguf: Path) -> None:
    meta = gguf_meta.read_metadata(demo_gguf)
    assert meta.architecture == "llama"
    assert meta.context_length == 8192
    assert 130e6 < meta.parameter_count < 140e6
    assert meta.block_count == 30
    assert meta.embedding_length == 576
    assert meta.vocab_size == 49152
    assert meta.tokenizer_model == "gpt2"
    assert meta.quant_type == "Q4_1"
    assert meta.has_chat_template and "<|im_start|>" in (meta.chat_template or "")
    assert meta.to_dict()["architecture"] == "llama"


def test_truncated_file(demo_gguf: Path, tmp_path: Path) -> None:
    data = demo_gguf.read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 5000, 20):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(GGUFError) as info:
            gguf_meta.read_metadata(broken)
        msg = str(info.value)
        assert "truncated" in msg and "again" in msg, msg
        assert _is_one_sentence(msg), msg


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("this is a text file, not a model\n")
    with pytest.raises(GGUFError, match="not a GGUF file") as info:
        gguf_meta.read_metadata(bogus)
    assert _is_one_sentence(str(info.value))
    with pytest.raises(GGUFError, match="does not exist"):
        gguf_meta.read_metadata(tmp_path / "absent.gguf")


def test_unknown_tensor_type(tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "tiny.gguf")
    assert gguf_meta.read_metadata(path).parameter_count == 32
    # Tensor info is: name (u64 length + bytes), n_dims (u32), dims (u64 each), type (u32).
    raw = bytearray(path.read_bytes())
    name = b"probe.weight"
    at = raw.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", raw, at)[0]
    type_at = at + 4 + 8 * n_dims
    assert struct.unpack_from("<I", raw, type_at)[0] == gguf.GGMLQuantizationType.F32
    struct.pack_into("<I", raw, type_at, 99)
    path.write_bytes(bytes(raw))
    with pytest.raises(GGUFError, match="tensor type 99") as info:
        gguf_meta.read_metadata(path)
    assert _is_one_sentence(str(info.value))


def test_unknown_architecture(tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "alien.gguf", arch="notarealarch")
    with pytest.raises(GGUFError, match="architecture 'notarealarch'") as info:
        gguf_meta.read_metadata(path)
    assert _is_one_sentence(str(info.value))


def test_effective_types_of_q4_k_m(llama_tools: Path, demo_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "smollm2-Q4_K_M.gguf"
    start = time.monotonic()
    run_tool([lt.tool_path("llama-quantize"), "--allow-requantize", demo_gguf, out, "Q4_K_M", "2"], tmp_path / "q.log")
    logger.info("llama-quantize Q4_1 -> Q4_K_M took %.1f s", time.monotonic() - start)

    assert gguf_meta.read_metadata(out).quant_type == "Q4_K_M"
    hist = gguf_meta.effective_type_histogram(out)
    assert next(iter(hist)) == "Q5_0", hist  # hidden 576 is not a multiple of 256: Q4_K falls back
    assert {"Q8_0", "Q4_K", "Q6_K"} <= set(hist)
    assert abs(sum(h["share"] for h in hist.values()) - 1.0) < 1e-9
    assert 0.5 < hist["Q5_0"]["share"] < 0.65
    assert sum(h["tensors"] for h in hist.values()) == gguf_meta.read_metadata(out).tensor_count


def test_dequantize_to_hf_generates(chain) -> None:
    """The session's dequantized demo (gguf_dequant.dequantize_to_hf, run by the chain's job) is a
    Hugging Face folder that transformers loads and generates from."""
    from catalog.variants import variant_path

    out = variant_path(chain["hf"])
    names = {f.relpath for f in chain["hf"].files}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names, names
    assert "quantization_config" not in (out / "config.json").read_text()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert tok.chat_template
    # As the GGUF declares: eos <|im_end|> (id 2), and no BOS is added (add_bos_token false).
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
    assert tok.convert_ids_to_tokens(tok("The capital")["input_ids"]) == ["The", "Ġcapital"]
    assert tok.decode(tok("The capital of France")["input_ids"]) == "The capital of France"
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    inputs = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tok.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    logger.info("continuation: %r", text)
    assert text.strip()
    assert "Paris" in text


def test_gguf_is_parsed_once_while_dequantizing_and_the_reader_is_restored(tmp_path: Path) -> None:
    """transformers opens a GGUF four times to dequantize it; within _parsed_once they share one
    parse (3.6 s each for the demo's vocabulary), and gguf-py is itself again afterwards."""
    import numpy as np

    from backends.llamacpp.gguf_dequant import _parsed_once

    path = tmp_path / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with _parsed_once():
        assert gguf.GGUFReader(path) is gguf.GGUFReader(str(path), "r")
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (original_reader, original_map)
    assert gguf.GGUFReader(path) is not gguf.GGUFReader(path)
