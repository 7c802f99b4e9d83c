#!/usr/bin/env bash
# Idempotent setup: system packages, the virtual environment, the demo model and the
# llama.cpp tools. Build caches live outside the checkout (pip's wheel cache and
# ~/.cache/model-catalog), so a fresh clone sets up in minutes after the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[setup]\033[0m %s (%d s)\n' "$*" "$SECONDS" >&2; }

# Headless Chromium for the browser tests and page screenshots (Debian's, not a download).
if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

# The virtual environment lives in the cache folder, one per Python version and requirements set,
# and .venv links to it: a fresh clone with the same requirements finds it installed (creating it
# and installing from pip's wheel cache took about 150 s a clone). A .venv folder of an older
# checkout is kept and used as before.
cache_dir="${MODEL_CATALOG_CACHE:-$HOME/.cache/model-catalog}"
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
venv_dir="$cache_dir/venvs/$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')-${want:0:16}"
if [ -L .venv ] && [ "$(readlink .venv)" != "$venv_dir" ]; then
  rm .venv  # another requirements set: link the environment of this one
fi
if [ ! -e .venv ]; then
  if [ ! -x "$venv_dir/bin/python" ]; then
    log "creating the virtual environment in $venv_dir"
    mkdir -p "$(dirname "$venv_dir")"
    python3 -m venv "$venv_dir"
  fi
  ln -sfn "$venv_dir" .venv  # -f: a link whose environment was removed (kept only the two newest)
fi
if [ -L .venv ]; then
  # An environment takes gigabytes: keep this one and the most recent other (a checkout on the
  # previous requirements); a checkout whose environment went sets up a new one on its next run.
  touch "$venv_dir"
  ls -1dt "$cache_dir"/venvs/*/ 2>/dev/null | tail -n +3 | while read -r old; do
    [ "${old%/}" = "$venv_dir" ] || rm -rf "${old%/}"
  done
fi
# pip writes the interpreter it runs as into every console script it installs (streamlit,
# benchmark_app, ray): run it as the environment's own path, not through this checkout's .venv
# link, or the scripts break once this checkout is gone (a CI clone, a deleted worktree).
PY=.venv/bin/python
[ -L .venv ] && PY="$venv_dir/bin/python"

# llama.cpp (the binding and the tools, built for this CPU's instruction-set level, never for
# "the CPU that builds", never from pip's wheel cache) compiles on every core for minutes while
# the requirements install is mostly download and unpacking: the two run side by side. The
# install leaves llama-cpp-python out (pip would compile it a second time); the build installs it.
log "llama.cpp: binding and tools for this CPU (built once into ~/.cache/model-catalog)"
bash scripts/build_llama_tools.sh "$PY" &
llama_build=$!

# Reinstall only when a requirements file changed since the last successful install.
stamp=.venv/.requirements.sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing requirements (beside the llama.cpp build)"
  without_binding=$(mktemp)
  trap 'rm -f "$without_binding"' EXIT
  grep -v '^llama-cpp-python==' requirements.txt > "$without_binding"
  $PY -m pip install -q --disable-pip-version-check -r "$without_binding"
  $PY -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
fi
wait "$llama_build" || { log "the llama.cpp build failed (its output is above)"; exit 1; }
log "llama.cpp ready"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Now that the binding is installed, the whole list: its own dependencies (diskcache, jinja2)
  # come in, and nothing is rebuilt (llama-cpp-python is satisfied).
  $PY -m pip install -q --disable-pip-version-check -r requirements.txt
  # A torchvision from PyPI breaks transformers imports beside the CPU torch: never leave one.
  if $PY -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('torchvision') else 1)"; then
    log "removing torchvision (incompatible with the CPU torch build)"
    $PY -m pip uninstall -y -q torchvision
  fi
  echo "$want" > "$stamp"  # only once both succeeded
fi

# An environment installed before that fix names another checkout's .venv in its scripts: repoint
# them at this environment (their first line only; a no-op once done).
if [ -L .venv ]; then
  for script in "$venv_dir"/bin/*; do
    [ -f "$script" ] && [ ! -L "$script" ] || continue
    first=$(head -n 1 "$script" 2>/dev/null | tr -d '\0' | head -c 300)
    case "$first" in
      "#!"*/bin/python | "#!"*/bin/python3 | "#!"*/bin/python3.*)
        [ "$first" = "#!$venv_dir/bin/python" ] || sed -i "1s|.*|#!$venv_dir/bin/python|" "$script" ;;
    esac
  done
fi

# Every declared toolkit's post-install steps (e.g. OpenVINO's telemetry opt-out), each skipped
# when already done: backends/<toolkit>/declaration.py, setup_steps.
$PY -m backends.setup_steps

# The loopback OpenID Connect provider that the sign-in test starts (npm's oidc-provider on the
# system's Node), kept beside the llama.cpp build so a fresh clone does not fetch it again.
oidc_dir="${MODEL_CATALOG_CACHE:-$HOME/.cache/model-catalog}/oidc-provider"
if [ ! -f "$oidc_dir/node_modules/oidc-provider/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    log "installing the test OIDC provider (npm oidc-provider 9.13.3)"
    mkdir -p "$oidc_dir"
    npm install --prefix "$oidc_dir" --no-audit --no-fund --loglevel=error oidc-provider@9.13.3 >/dev/null \
      || log "npm could not install oidc-provider; the OIDC sign-in test will fail until it can"
  else
    log "no npm on this machine; the OIDC sign-in test needs Node and npm"
  fi
fi

# Prove the build runs here: the binding generates with the demo model, each tool starts. A crash
# stops setup with the step and the signal, and removes the build's stamps so the next run rebuilds.
log "self-check of the llama.cpp build on this machine"
bash scripts/build_llama_tools.sh "$PY" --self-check
log "ready"
