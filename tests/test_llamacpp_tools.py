"""backends.llamacpp.tools against the real tools built from llama-cpp-python's sdist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backends.llamacpp import tools as lt
from backends.tools import ToolFailed, ToolMissing, run_tool


def test_quantize_types_come_from_the_tool(llama_tools: Path) -> None:
    types = lt.quantize_types()
    for name in ("Q4_K_M", "Q8_0", "IQ4_XS", "IQ2_XXS", "Q4_1", "F16"):
        assert name in types, name
    assert "ppl" in types["Q4_K_M"]
    assert types["Q4_K"] == "alias for Q4_K_M"


def test_imatrix_rule_is_read_from_llama_cpp_source(llama_tools: Path) -> None:
    needs = lt.types_requiring_imatrix()
    assert {"IQ2_XXS", "IQ2_XS", "IQ1_S", "Q2_K_S"} <= needs
    assert not {"Q4_K_M", "Q2_K", "IQ4_XS", "IQ3_S", "Q8_0"} & needs
    # Every name is one llama-quantize actually accepts.
    assert needs <= set(lt.quantize_types())


@pytest.mark.parametrize(("qtype", "needs_imatrix"), [("IQ2_XXS", True), ("Q4_K_M", False)])
def test_imatrix_rule_agrees_with_llama_quantize(
    llama_tools: Path, demo_gguf: Path, tmp_path: Path, qtype: str, needs_imatrix: bool
) -> None:
    """--dry-run plans the quantization and warns when the real run would need an imatrix."""
    log = tmp_path / "dry.log"
    run_tool([lt.tool_path("llama-quantize"), "--dry-run", "--allow-requantize", demo_gguf, qtype, "1"], log)
    warned = "will require an imatrix" in log.read_text()
    assert warned is needs_imatrix
    assert (qtype in lt.types_requiring_imatrix()) is needs_imatrix


def test_supported_architectures_from_converter(llama_tools: Path) -> None:
    archs = lt.supported_converter_architectures()
    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"} <= archs
    # Vision-projector-only classes cannot convert a language model by themselves.
    assert "InternVisionModel" not in archs
    assert len(archs) > 100


def test_converter_and_its_gguf_py_are_kept(llama_tools: Path) -> None:
    converter = lt.converter_path()
    assert converter.name == "convert_hf_to_gguf.py"
    assert (converter.parent / "gguf-py" / "gguf" / "__init__.py").is_file()
    proc = subprocess.run([sys.executable, str(converter), "--help"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--outtype" in proc.stdout


def test_missing_tool_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CATALOG_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ToolMissing, match="build_llama_tools.sh"):
        lt.tool_path("llama-quantize")
    assert lt.tools_ready() is False


def test_run_tool_streams_and_fails_with_log_tail(llama_tools: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "q.log"
    seen: list[str] = []
    with pytest.raises(ToolFailed) as info:
        run_tool([lt.tool_path("llama-quantize"), tmp_path / "nope.gguf", tmp_path / "out.gguf", "Q8_0"], log,
                 seen.append, timeout=120)
    err = info.value
    assert err.returncode not in (0, None)
    assert "nope.gguf" in err.log_tail
    assert seen and log.read_text().startswith("$ ")
    assert str(log) in str(err)


def test_parsers_on_fixed_text() -> None:
    """The text formats the parsers rely on, pinned as llama.cpp prints and writes them."""
    help_text = (
        "usage: llama-quantize ...\n allowed quantization types\n------\n\n"
        "   2  or  Q4_0    :  4.34G, +0.4685 ppl @ Llama-3-8B\n"
        "  15  or  Q4_K_M  :  4.58G, +0.1754 ppl @ Llama-3-8B\n"
        "          COPY    : only copy tensors, no quantizing\n"
    )
    assert lt.parse_quantize_help(help_text) == {
        "Q4_0": "4.34G, +0.4685 ppl @ Llama-3-8B",
        "Q4_K_M": "4.58G, +0.1754 ppl @ Llama-3-8B",
        "COPY": "only copy tensors, no quantizing",
    }
    src = '@ModelBase.register(\n    "A",\n    "B",\n)\nclass X: pass\n@ModelBase.register("C")\nclass Y: pass\n'
    assert lt.parse_registered_architectures([src]) == {"A", "B", "C"}
