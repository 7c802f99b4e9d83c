"""The portable llama.cpp build: a level per instruction set, never AMX, never "native"."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends.llamacpp import cpu_level

REPO = Path(__file__).resolve().parent.parent

# The flags lines of the two CPUs this project's machines were seen with.
XEON_WITH_AMX = ("fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 avx512f avx512dq avx512cd avx512bw "
                 "avx512vl avx512_vnni avx512_bf16 avx512vbmi avx512_fp16 amx_tile amx_int8 amx_bf16 avx_vnni")
EPYC_AVX2 = "fpu sse sse2 ssse3 sse4_1 sse4_2 fma avx f16c avx2 bmi1 bmi2 sha_ni vaes"


def cmake(flags: str) -> list[str]:
    return cpu_level.level_for_flags(set(flags.split())).cmake_args()


def test_a_cpu_that_advertises_amx_gets_avx512_without_amx() -> None:
    level = cpu_level.level_for_flags(set(XEON_WITH_AMX.split()))
    args = level.cmake_args()
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args and "-DGGML_AVX512_BF16=ON" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    assert not any("AMX" in a and a.endswith("=ON") for a in args)
    assert "-DGGML_NATIVE=OFF" in args


def test_a_cpu_without_avx512_never_gets_avx512() -> None:
    level = cpu_level.level_for_flags(set(EPYC_AVX2.split()))
    assert level.name == "haswell"
    args = level.cmake_args()
    assert "-DGGML_AVX2=ON" in args and "-DGGML_FMA=ON" in args and "-DGGML_F16C=ON" in args
    assert "-DGGML_AVX512=OFF" in args and not any(a.startswith("-DGGML_AVX512") and a.endswith("=ON") for a in args)


def test_avx512f_alone_is_not_enough_for_ggml_avx512() -> None:
    # ggml's AVX512 option compiles with -mavx512bw/-mavx512vl/...: all of them must be present.
    assert "-DGGML_AVX512=OFF" in cmake(EPYC_AVX2 + " avx512f")


def test_older_cpus_fall_back_to_lower_levels() -> None:
    assert cpu_level.level_for_flags({"sse4_2", "avx"}).name == "sandybridge"
    assert cpu_level.level_for_flags({"sse4_2"}).name == "sse42"
    assert cpu_level.level_for_flags(set()).name == "x64"


def test_levels_have_distinct_keys_that_name_them() -> None:
    keys = {cpu_level.level_for_flags(set(f.split())).key for f in (XEON_WITH_AMX, EPYC_AVX2, "sse4_2", "")}
    assert len(keys) == 4
    assert cpu_level.level_for_flags(set(EPYC_AVX2.split())).key.startswith("haswell-")


def test_cpuinfo_parsing_reads_the_flags_line() -> None:
    text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert cpu_level.cpu_flags(text) == {"fpu", "avx2", "fma"}


def test_no_build_script_compiles_for_the_building_cpu() -> None:
    for script in (REPO / "scripts").iterdir():
        text = script.read_text()
        assert "GGML_NATIVE=ON" not in text and "march=native" not in text, script


def test_the_installed_binding_and_the_tools_share_this_machines_build(llama_tools: Path) -> None:
    from backends import registry
    from backends.llamacpp import tools as llamacpp_tools
    from backends.llamacpp.tools import llama_cpp_build
    from bench.fingerprint import fingerprint

    key = cpu_level.this_machine().key
    assert llama_cpp_build() == f"{llamacpp_tools.llama_cpp_version()}-{key}"
    assert key in str(llama_tools)
    stamp = (llamacpp_tools.version_dir() / llamacpp_tools.STAMP_NAME).read_text()
    assert f"level={key}" in stamp and "GGML_NATIVE=OFF" in stamp
    # A llama.cpp result records the build it was measured with (the GGUF format says so).
    gguf = fingerprint(2, "llama.cpp CPU", runner_fields=registry.fingerprint_fields("gguf"))
    assert gguf["llama_cpp_build"] == llama_cpp_build()


def test_only_llama_cpp_results_record_the_build_and_it_does_not_split_them_from_their_baseline() -> None:
    """Formerly "fingerprints of differently built runtimes differ": every result carried the
    llama.cpp build and its id read it, so a rebuild moved ONNX and OpenVINO results too. Now the
    build is what the GGUF format's runners add to their own results' fingerprints; the id, which
    each result is compared with its baseline (another runtime) by, reads the machine only."""
    from backends import registry
    from bench.fingerprint import fingerprint, fingerprint_id

    gguf = fingerprint(2, "llama.cpp CPU", runner_fields=registry.fingerprint_fields("gguf"))
    rebuilt = gguf | {"llama_cpp_build": "0.3.36-zen4-00000000"}
    assert gguf["llama_cpp_build"] != rebuilt["llama_cpp_build"]  # the record tells the two builds apart
    for fmt in ("onnx", "onnx-genai", "openvino", "hf"):
        assert "llama_cpp_build" not in fingerprint(2, "X CPU", runner_fields=registry.fingerprint_fields(fmt))
    baseline = fingerprint(2, "PyTorch FP32 CPU", runner_fields=registry.fingerprint_fields("hf"))
    assert fingerprint_id(gguf) == fingerprint_id(rebuilt) == fingerprint_id(baseline)


def test_self_check_names_the_step_and_signal_of_a_crash_and_forces_a_rebuild(
        llama_tools: Path, demo_gguf: Path, tmp_path: Path) -> None:
    """A binding that segfaults on this CPU (injected: a python that kills itself when asked to
    load llama_cpp) stops setup with one sentence, and removes the stamps so the next run rebuilds."""
    from backends.llamacpp import tools as llamacpp_tools

    cache = tmp_path / "cache"
    root = cache / "llama.cpp" / llamacpp_tools.version_dir().name
    root.mkdir(parents=True)
    shutil.copy(llamacpp_tools.version_dir() / llamacpp_tools.STAMP_NAME, root)
    (root / "bin").symlink_to(llama_tools)
    prefix = tmp_path / "venv"
    prefix.mkdir()
    (prefix / ".llama_cpp_build").write_text("marker")
    fake = tmp_path / "python"
    fake.write_text(f"""#!/bin/bash
case "$2" in
  *sys.prefix*) echo "{prefix}"; exit 0 ;;
  *"from llama_cpp import Llama"*) kill -SEGV $$ ;;
esac
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build_llama_tools.sh"), str(fake), "--self-check"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
                          env=dict(os.environ, MODEL_CATALOG_CACHE=str(cache)))
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if "ERROR" in x)
    assert re.search(r"the llama\.cpp binding \(loading the demo GGUF.*\) crashed with SIGSEGV", line), line
    assert "the next run rebuilds" in line
    assert not (root / llamacpp_tools.STAMP_NAME).exists()
    assert not (prefix / ".llama_cpp_build").exists()


@pytest.mark.parametrize("tool", ["llama-quantize", "llama-bench", "llama-perplexity", "llama-imatrix"])
def test_each_tool_starts_on_this_cpu(llama_tools: Path, tool: str) -> None:
    proc = subprocess.run([str(llama_tools / tool), "--help"], capture_output=True, timeout=60, check=False)
    assert proc.returncode in (0, 1), f"{tool} exited with {proc.returncode} (a negative status is a signal)"
