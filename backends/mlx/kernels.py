"""Which quantization modes really run on this machine's MLX backend, found by running them.

A child process quantizes one small matrix in every (mode, bits, group size) the form offers,
multiplies by it with MLX's quantized matmul and dequantizes it back, on MLX's default device (the
CPU here, Metal on a Mac). What fails is refused in pre-flight with MLX's own reason, e.g.
"mxfp4 quantization requires group size 32 but got 64". The probe runs in a child so that a
kernel that crashes (or the MLX import's memory) never touches the app; its answer is kept for the
life of the process, keyed by the MLX version.

Measured with mlx[cpu] 0.32.4 on Linux: affine runs with 2, 3, 4, 6 and 8 bits in groups of 32, 64
and 128; mxfp4 (4 bits, groups of 32), nvfp4 (4 bits, 16) and mxfp8 (8 bits, 32) run too.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
from functools import lru_cache

from backends.mlx.quant import BITS, GROUP_SIZES, MODES

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 120

PROBE = r"""
import json, sys
import mlx.core as mx
w = mx.random.normal((64, 256), key=mx.random.key(0)); x = mx.random.normal((2, 256), key=mx.random.key(1))
out = {"device": str(mx.default_device())}
for mode, bits, group in json.loads(sys.argv[1]):
    try:
        q = mx.quantize(w, group_size=group, bits=bits, mode=mode)
        biases = q[2] if len(q) > 2 else None
        y = mx.quantized_matmul(x, q[0], q[1], biases, transpose=True, group_size=group, bits=bits, mode=mode)
        d = mx.dequantize(q[0], q[1], biases, group_size=group, bits=bits, mode=mode)
        mx.eval(y, d)
        ok = bool(mx.all(mx.isfinite(y)).item()) and d.shape == w.shape
        out[f"{mode}/{bits}/{group}"] = "" if ok else "the quantized matmul gave non-finite values"
    except Exception as exc:  # MLX's own sentence is the reason shown to users
        out[f"{mode}/{bits}/{group}"] = str(exc).split("] ", 1)[-1].strip() or type(exc).__name__
print(json.dumps(out))
"""


def mlx_version() -> str:
    try:
        return importlib.metadata.version("mlx")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _grid() -> list[tuple[str, int, int]]:
    return [(m, int(b), int(g)) for m in MODES for b in BITS for g in GROUP_SIZES]


@lru_cache(maxsize=4)
def probe(version: str) -> dict[str, str]:
    """'mode/bits/group' -> "" where it ran, else why not; "device" -> MLX's default device.
    Raises RuntimeError when MLX cannot run at all."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(_grid())], capture_output=True, text=True,
                          timeout=PROBE_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise RuntimeError(f"MLX {version} does not run here ({last[:160]})")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    log.info("MLX %s kernel probe on %s: %d of %d combinations run", version, found.get("device"),
             sum(1 for k, v in found.items() if k != "device" and not v), len(found) - 1)
    return found


def unsupported(mode: str, bits: int, group_size: int) -> str | None:
    """Why this combination does not run on this machine's MLX backend, or None when it does."""
    try:
        found = probe(mlx_version())
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        return str(exc)
    why = found.get(f"{mode}/{bits}/{group_size}", "it was not probed")
    return why or None


def device() -> str:
    """MLX's default device as the probe saw it, e.g. "Device(cpu, 0)"."""
    return probe(mlx_version()).get("device", "unknown")
