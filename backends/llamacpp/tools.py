"""Locate the llama.cpp command-line tools built by scripts/build_llama_tools.sh, and read what they accept.

The tools live in a cache (MODEL_CATALOG_CACHE/llama.cpp/<version>-<level key>/), keyed by the
installed llama-cpp-python version and this CPU's build level (backends/llamacpp/cpu_level.py), so that
tools, converter and runtime share one llama.cpp built with one set of flags.
Nothing here imports llama_cpp: importing it loads a large shared library, and the catalog must
start (and explain what is missing) even when the runtime is absent. backends/tools.py runs them.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path

from backends.llamacpp import cpu_level
from backends.tools import ToolMissing

TOOLS = ("llama-quantize", "llama-imatrix", "llama-perplexity", "llama-bench")
SETUP_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_llama_tools.sh"
STAMP_NAME = "BUILD_COMPLETE"


class SourceFormatChanged(RuntimeError):
    """llama.cpp's source no longer has the shape this module parses; this module needs updating."""


def _setup_hint(version: str) -> str:
    return (
        f"run `bash {SETUP_SCRIPT} .venv/bin/python` once to build the llama.cpp tools "
        f"for llama-cpp-python {version}"
    )


def cache_root() -> Path:
    """MODEL_CATALOG_CACHE, default ~/.cache/model-catalog (the same rule as the setup script)."""
    return Path(os.environ.get("MODEL_CATALOG_CACHE") or "~/.cache/model-catalog").expanduser()


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version, read from package metadata (no import)."""
    try:
        return _dist_version("llama-cpp-python")
    except PackageNotFoundError as exc:
        raise ToolMissing(
            "llama-cpp-python is not installed in this Python environment; install requirements.txt first."
        ) from exc


def build_key() -> str:
    """The instruction-set level and flags hash this machine's llama.cpp is built with."""
    return cpu_level.this_machine().key


def version_dir() -> Path:
    return cache_root() / "llama.cpp" / f"{llama_cpp_version()}-{build_key()}"


def tools_dir() -> Path:
    """Folder holding the built binaries (may not exist yet)."""
    return version_dir() / "bin"


def source_dir() -> Path:
    """The extracted llama.cpp source of the installed version (converter, gguf-py, C++ source)."""
    return version_dir() / "src"


def tools_ready() -> bool:
    """True when the setup script completed for this version (its stamp is written last)."""
    return (version_dir() / STAMP_NAME).is_file() and all((tools_dir() / t).is_file() for t in TOOLS)


def tool_path(name: str) -> Path:
    """Path to a built llama.cpp tool such as 'llama-quantize'; ToolMissing if it is not built."""
    path = tools_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        version = llama_cpp_version()
        raise ToolMissing(f"The llama.cpp tool {name} was not found in {tools_dir()}; {_setup_hint(version)}.")
    return path


def _source_file(relative: str) -> Path:
    path = source_dir() / relative
    if not path.is_file():
        raise ToolMissing(f"The llama.cpp source file {relative} was not found in {source_dir()}; "
                          f"{_setup_hint(llama_cpp_version())}.")
    return path


def converter_path() -> Path:
    """convert_hf_to_gguf.py of the installed llama.cpp version (run it with the venv's python)."""
    return _source_file("convert_hf_to_gguf.py")


# --------------------------------------------------------------------------------------------
# Converter architectures
# --------------------------------------------------------------------------------------------

def parse_registered_architectures(sources: Sequence[str]) -> set[str]:
    """HF architecture names from `@ModelBase.register("A", "B", ...)` class decorators.

    Parsed with ast rather than regexes because the decorators span several lines.
    """
    names: set[str] = set()
    for text in sources:
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == "register"):
                    names.update(a.value for a in deco.args
                                 if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def _dict_keys(text: str, variable: str) -> set[str] | None:
    """Keys of a module-level `VARIABLE: dict[...] = {...}` literal, or None if absent."""
    for node in ast.parse(text).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == variable and isinstance(node.value, ast.Dict):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return None


@functools.lru_cache(maxsize=4)
def _converter_architectures(src: Path) -> frozenset[str]:
    converter = src / "convert_hf_to_gguf.py"
    # Older llama.cpp kept every model class in convert_hf_to_gguf.py; newer versions (this one)
    # split them into a conversion/ package next to it. Read both layouts.
    files = [converter, *sorted((src / "conversion").glob("*.py"))]
    texts = [f.read_text(encoding="utf-8") for f in files if f.is_file()]
    names = parse_registered_architectures(texts)
    if not names:
        raise SourceFormatChanged(f"No @ModelBase.register(...) decorators were found under {src}; "
                                  "backends/llamacpp_tools.py must be updated for this llama.cpp version.")
    # The split layout dispatches text models through TEXT_MODEL_MAP; classes registered only
    # there for vision/audio projectors (mmproj) cannot convert a language model on their own.
    init = src / "conversion" / "__init__.py"
    text_map = _dict_keys(init.read_text(encoding="utf-8"), "TEXT_MODEL_MAP") if init.is_file() else None
    if text_map:
        names &= text_map
    return frozenset(names)


def supported_converter_architectures() -> set[str]:
    """HF `architectures` values (e.g. LlamaForCausalLM) that convert_hf_to_gguf.py can convert."""
    converter_path()  # raises ToolMissing with the setup hint when the source is absent
    return set(_converter_architectures(source_dir()))


# --------------------------------------------------------------------------------------------
# Quantization types
# --------------------------------------------------------------------------------------------

# llama-quantize prints, after "allowed quantization types", lines such as
#   "   2  or  Q4_0    :  4.34G, +0.4685 ppl @ Llama-3-8B"   and, without a number,
#   "          COPY    : only copy tensors, no quantizing"
_QUANT_LINE = re.compile(r"^\s*(?:(\d+)\s+or\s+)?([A-Z][A-Z0-9_]*)\s*:\s*(.*?)\s*$")


def parse_quantize_help(text: str) -> dict[str, str]:
    """Quantization type name -> description from `llama-quantize --help` output."""
    marker = text.find("allowed quantization types")
    if marker < 0:
        raise SourceFormatChanged("llama-quantize --help no longer lists 'allowed quantization types'; "
                                  "backends/llamacpp_tools.py must be updated.")
    types: dict[str, str] = {}
    for line in text[marker:].splitlines()[1:]:
        m = _QUANT_LINE.match(line)
        if m:
            types[m.group(2)] = m.group(3)
    return types


@functools.lru_cache(maxsize=4)
def _quantize_types(binary: Path) -> tuple[tuple[str, str], ...]:
    # usage() prints the list and exits with status 1 even for --help, so the status is ignored.
    proc = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60, check=False)
    return tuple(parse_quantize_help(proc.stdout + proc.stderr).items())


def quantize_types() -> dict[str, str]:
    """Types llama-quantize accepts (name -> its description), in the order it lists them.

    Includes the aliases (Q4_K = Q4_K_M ...), the float types (F16, BF16, F32) and COPY,
    exactly as the tool prints them; callers filter what they offer.
    """
    return dict(_quantize_types(tool_path("llama-quantize")))


# --------------------------------------------------------------------------------------------
# Which types need an importance matrix
# --------------------------------------------------------------------------------------------

def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _function_body(text: str, signature_regex: str) -> str:
    m = re.search(signature_regex, text)
    if not m:
        raise SourceFormatChanged(f"llama.cpp source has no function matching {signature_regex!r}; "
                                  "backends/llamacpp_tools.py must be updated.")
    start = text.index("{", m.end())
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise SourceFormatChanged("unbalanced braces while reading llama.cpp source")


_STATEMENT = re.compile(r"case\s+(\w+)\s*:|return\s+([^;]+);")


def parse_imatrix_rule(quantize_cpp: str, llama_quant_cpp: str) -> set[str]:
    """Quantization names for which llama.cpp refuses to quantize without an imatrix.

    llama.cpp decides per tensor (src/llama-quant.cpp, tensor_requires_imatrix): a tensor whose
    target ggml type is one of a few very-low-bit types (IQ1_*, IQ2_*, IQ3_XXS), or Q2_K inside a
    Q2_K_S file, needs one, token embeddings and output excepted. A file type therefore needs one
    when its default tensor type (llama_ftype_get_default_type) is such a type. The names come
    from tools/quantize/quantize.cpp's QUANT_OPTIONS table (name -> LLAMA_FTYPE_*).
    """
    quantize_cpp = _strip_comments(quantize_cpp)
    llama_quant_cpp = _strip_comments(llama_quant_cpp)

    # name -> LLAMA_FTYPE_... from   { "Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M, "..." },
    options = re.findall(r'\{\s*"(\w+)"\s*,\s*(LLAMA_FTYPE_\w+)\s*,', quantize_cpp)

    # ftype -> default ggml type, following C switch fall-through of stacked case labels.
    default_type: dict[str, str] = {}
    pending: list[str] = []
    body = _function_body(llama_quant_cpp, r"ggml_type\s+llama_ftype_get_default_type\s*\(")
    for case, ret in _STATEMENT.findall(body):
        if case:
            pending.append(case)
            continue
        ret = ret.strip()
        if re.fullmatch(r"GGML_TYPE_\w+", ret):
            default_type.update(dict.fromkeys(pending, ret))
        pending = []

    # ggml types that always need an imatrix, and (ggml type, ftype) pairs that need one.
    always: set[str] = set()
    only_in: set[tuple[str, str]] = set()
    pending = []
    body = _function_body(llama_quant_cpp, r"bool\s+tensor_requires_imatrix\s*\(")
    for case, ret in _STATEMENT.findall(body):
        if case:
            pending.append(case)
            continue
        ret = ret.strip()
        if ret == "true":
            always.update(pending)
        else:
            conditional = re.fullmatch(r"ftype\s*==\s*(LLAMA_FTYPE_\w+)", ret)
            if conditional:
                only_in.update((t, conditional.group(1)) for t in pending)
        pending = []

    if not options or not default_type or not always:
        raise SourceFormatChanged("could not read llama.cpp's imatrix rule from its source; "
                                  "backends/llamacpp_tools.py must be updated for this version.")
    return {name for name, ftype in options
            if default_type.get(ftype) in always or (default_type.get(ftype), ftype) in only_in}


@functools.lru_cache(maxsize=4)
def _types_requiring_imatrix(src: Path) -> frozenset[str]:
    quantize_cpp = (src / "tools" / "quantize" / "quantize.cpp").read_text(encoding="utf-8")
    llama_quant_cpp = (src / "src" / "llama-quant.cpp").read_text(encoding="utf-8")
    return frozenset(parse_imatrix_rule(quantize_cpp, llama_quant_cpp))


def types_requiring_imatrix() -> set[str]:
    """Quantization type names that llama-quantize refuses to produce without --imatrix."""
    _source_file("tools/quantize/quantize.cpp")
    _source_file("src/llama-quant.cpp")
    return set(_types_requiring_imatrix(source_dir()))


# Written by scripts/build_llama_tools.sh when it installs the binding: "<version>-<level>-<flags hash>".
LLAMA_BUILD_MARK = ".llama_cpp_build"


def llama_cpp_build() -> str:
    """How the installed llama.cpp binding (and the tools beside it) was built: results measured
    with differently built runtimes must never be mixed silently."""
    try:
        return (Path(sys.prefix) / LLAMA_BUILD_MARK).read_text().strip() or "unknown"
    except OSError:
        return "unknown (not built by setup)"
