"""The hardware and execution fingerprint stored with every result."""

from __future__ import annotations

import hashlib
import os
import platform
import re
from pathlib import Path
from typing import Any

import psutil

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


def fingerprint(threads: int, target: str, device: dict[str, str] | None = None,
                runtime_options: dict[str, Any] | None = None,
                runner_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """device: what the runner reported of the device it compiled for (a runtime with plugins
    names which one); runtime_options: the benchmark options that were not at their default;
    runner_fields: what the measured format's runners add (registry.fingerprint_fields, e.g. how
    llama.cpp was built), recorded with that format's results only."""
    model, flags = _cpuinfo()
    fp = {
        "cpu": model,
        "cpu_flags": sorted(f for f in flags if f in KEY_FLAGS),
        "cpu_flags_sha": hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12],
        "cores": os.cpu_count(),
        "threads": threads,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "target": target,
    }
    fp.update(runner_fields or {})
    if device:
        fp["runtime_device"] = device
    if runtime_options:
        fp["runtime_options"] = runtime_options
    return fp


def device_class(target: str) -> str:
    """The kind of device a target runs on: every runtime on this CPU is "CPU"; a simulator or an
    accelerator ("QNN HTP simulator", "MLX GPU") stays itself. A setting in brackets after the
    device ("OpenVINO CPU (LATENCY)") does not move it off the CPU: settings that change what is
    measured are the fingerprint's runtime_options."""
    bare = re.sub(r"\s*\([^()]*\)$", "", target)
    return "CPU" if bare.endswith(" CPU") or bare == "CPU" else target


def fingerprint_id(fp: dict[str, Any]) -> str:
    """Results are comparable only when this id matches: the same machine, threads and device class.

    The runtime itself (llama.cpp, ONNX Runtime, transformers...) is not part of it: comparing
    runtimes on one machine is what the charts are for, each result against a baseline run by
    another runtime. So what one runtime's runners add (runner_fields: how llama.cpp was built) is
    recorded but not part of the id, or no result of that runtime would ever match its baseline;
    a rebuilt runtime shows as its changed runtime version, as an upgraded one does. Results stored
    when every fingerprint carried the llama.cpp build still group with the newer ones: the id is
    recomputed from the stored fingerprint when charting, and that key is not read.
    A simulated or different device is part of it, and so are benchmark options away from their
    default (a runner setting that changes what is measured). The runtime's device description is
    not: the device class and the CPU already say where it ran. Results stored before the options
    were recorded keep their id (the key is added only if present)."""
    fields = {k: fp[k] for k in ("cpu", "cpu_flags_sha", "cores", "threads", "memory_gb")}
    if fp.get("runtime_options"):
        fields["runtime_options"] = fp["runtime_options"]
    return "f-" + digest(dict(fields, device=device_class(str(fp.get("target", "")))), length=12)
