#!/usr/bin/env bash
# Build the llama.cpp command-line tools (quantize, imatrix, perplexity, bench) that match
# the llama-cpp-python installed in a venv, into a per-version cache outside the repository.
#
# Why: llama-cpp-python ships only the library, not these tools nor convert_hf_to_gguf.py,
# but its sdist on PyPI carries the exact llama.cpp source it binds. Building from that source
# keeps the tools, the converter and the runtime on one llama.cpp version, and needs no network
# beyond the package registry. No llama.cpp code ever enters this repository.
#
# Usage: scripts/build_llama_tools.sh [PYTHON]     (default: .venv/bin/python)
# Env:   MODEL_CATALOG_CACHE       cache root (default ~/.cache/model-catalog)
#        MODEL_CATALOG_BUILD_JOBS  parallel compile jobs (default 2)
#
# Idempotent: when the stamp file says a build of this version completed and the binaries
# are present, it exits at once. The stamp is written only after every step succeeded.
set -euo pipefail

PYTHON="${1:-.venv/bin/python}"
CACHE="${MODEL_CATALOG_CACHE:-$HOME/.cache/model-catalog}"
JOBS="${MODEL_CATALOG_BUILD_JOBS:-2}"
TOOLS=(llama-quantize llama-imatrix llama-perplexity llama-bench)

log() { printf '[build_llama_tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || die "python '$PYTHON' not found; pass the venv's python as the first argument."

VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null)" \
    || die "llama-cpp-python is not installed in '$PYTHON'; install requirements.txt first."

ROOT="$CACHE/llama.cpp/$VERSION"
SRC="$ROOT/src"
BIN="$ROOT/bin"
STAMP="$ROOT/BUILD_COMPLETE"
DOWNLOADS="$CACHE/downloads"

all_present() {
    [ -f "$STAMP" ] || return 1
    [ -f "$SRC/convert_hf_to_gguf.py" ] && [ -d "$SRC/gguf-py" ] || return 1
    local t
    for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 1; done
}

if all_present; then
    log "llama.cpp tools for llama-cpp-python $VERSION already built in $BIN"
    exit 0
fi

mkdir -p "$ROOT" "$DOWNLOADS"
# Two callers (the app's setup and a test run) may start this at once: serialise them, and
# re-check after taking the lock because the other one may have finished the job meanwhile.
exec 9>"$ROOT/.lock"
flock 9
if all_present; then
    log "llama.cpp tools for llama-cpp-python $VERSION were built by a concurrent run"
    exit 0
fi
rm -f "$STAMP"

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

# 2. The source: extract to a scratch folder, then move into place, so that a present src/
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
    -DGGML_NATIVE=ON
    -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_SERVER=OFF
)

# 3. Build only the four tools. Static first: self-contained binaries that can be copied.
#    nice keeps the interactive app responsive on a small machine during the build.
build() {  # $1: build dir, rest: extra cmake flags
    local dir="$1"; shift
    cmake -S "$SRC" -B "$dir" "${GENERATOR[@]}" "${COMMON_FLAGS[@]}" "$@" >&2 &&
        nice -n 10 cmake --build "$dir" --config Release -j "$JOBS" --target "${TOOLS[@]}" >&2
}

BUILD="$ROOT/build-static"
SHARED=0
log "building ${TOOLS[*]} (static, $JOBS jobs); this takes several minutes the first time"
if ! build "$BUILD" -DBUILD_SHARED_LIBS=OFF; then
    log "static build failed; retrying with shared libraries"
    BUILD="$ROOT/build-shared"
    SHARED=1
    # $ORIGIN lets the copied binaries find the shared libraries copied next to them.
    build "$BUILD" -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' \
        || die "building the llama.cpp tools failed; see the CMake output above."
fi

# 4. Copy the binaries into bin/ (staged, then swapped in).
rm -rf "$BIN.tmp"
mkdir -p "$BIN.tmp"
for t in "${TOOLS[@]}"; do
    f="$(find "$BUILD" -type f -name "$t" -perm -u+x | head -n 1)"
    [ -n "$f" ] || die "the build finished but $t was not found under $BUILD."
    cp "$f" "$BIN.tmp/$t"
done
if [ "$SHARED" = 1 ]; then
    find "$BUILD" -type f -name '*.so*' -exec cp {} "$BIN.tmp/" \;
fi
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
for t in "${TOOLS[@]}"; do "$BIN/$t" --help >/dev/null 2>&1 || [ $? -le 1 ] || die "$t does not start."; done

{
    echo "llama_cpp_python_version=$VERSION"
    echo "sdist=$(basename "$SDIST")"
    echo "shared_libs=$SHARED"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "tools=${TOOLS[*]}"
} >"$STAMP"
log "done: ${TOOLS[*]} in $BIN"
