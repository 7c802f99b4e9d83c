"""The hardware and execution fingerprint stored with every result."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from backends.llamacpp.tools import llama_cpp_build
from catalog.identity import digest

KEY_FLAGS = ("avx", "avx2", "avx512f", "avx512_vnni", "fma", "f16c", "amx_tile", "neon", "asimd")


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    return model, flags


def fingerprint(threads: int, target: str) -> dict[str, Any]:
    model, flags = _cpuinfo()
    return {
        "cpu": model,
        "cpu_flags": sorted(f for f in flags if f in KEY_FLAGS),
        "cpu_flags_sha": hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12],
        "cores": os.cpu_count(),
        "threads": threads,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "target": target,
        "llama_cpp_build": llama_cpp_build(),
    }


def device_class(target: str) -> str:
    """The kind of device a target runs on: every runtime on this CPU is "CPU"; a simulator or an
    accelerator ("QNN HTP simulator", "MLX GPU") stays itself."""
    return "CPU" if target.endswith(" CPU") or target == "CPU" else target


def fingerprint_id(fp: dict[str, Any]) -> str:
    """Results are comparable only when this id matches: the same machine, threads, device class
    and llama.cpp build (its instruction-set level).

    The runtime itself (llama.cpp, ONNX Runtime, transformers...) is not part of it: comparing
    runtimes on one machine is what the charts are for. A simulated or different device is.
    Results stored before the build was recorded keep their id (the key is added only if present)."""
    fields = {k: fp[k] for k in ("cpu", "cpu_flags_sha", "cores", "threads", "memory_gb")}
    if "llama_cpp_build" in fp:
        fields["llama_cpp_build"] = fp["llama_cpp_build"]
    return "f-" + digest(dict(fields, device=device_class(str(fp.get("target", "")))), length=12)
