"""Which instruction-set level llama.cpp is built for on this machine, read from /proc/cpuinfo.

Machines of this project's kind do not share one CPU: one advertises AVX512 and AMX (which its VM
does not let a process use), the next has no AVX512 at all. A build for "the CPU that builds"
(GGML_NATIVE) crashes on the next machine, so setup builds llama-cpp-python and llama.cpp's tools
for a named level instead, with every instruction-set option explicit, and keys its caches by it.

Why levels and not ggml's runtime dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS): the
llama-cpp-python binding never calls ggml_backend_load_all(), so a binding built that way finds no
CPU backend at all; and its sapphirerapids variant would pick AMX wherever cpuid advertises it.

The levels mirror ggml's own CPU variants (ggml/src/CMakeLists.txt), minus every AMX one: AMX
needs the OS to grant tile state per process, which these VMs advertise but do not grant.

Stdlib only: setup runs this file directly (`python backends/llamacpp/cpu_level.py --cmake`) before the
project's requirements are installed.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

# ggml CMake option -> the /proc/cpuinfo flags that must all be present for it.
OPTION_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE42": ("sse4_2",),
    "AVX": ("avx",),
    "F16C": ("f16c",),
    "FMA": ("fma",),
    "AVX2": ("avx2",),
    "BMI2": ("bmi2",),
    "AVX_VNNI": ("avx_vnni",),
    # ggml's GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
    "AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
}

# Best first; the first level whose options the CPU has all of is chosen.
X86_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("zen4", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI",
              "AVX512_BF16")),
    ("cooperlake", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VNNI", "AVX512_BF16")),
    ("icelake", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI")),
    ("cascadelake", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VNNI")),
    ("skylakex", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512")),
    ("alderlake", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX_VNNI")),
    ("haswell", ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2")),
    ("sandybridge", ("SSE42", "AVX")),
    ("sse42", ("SSE42",)),
    ("x64", ()),
)

# Options no level ever turns on, stated explicitly so a CMake default can never add them.
NEVER = ("AMX_TILE", "AMX_INT8", "AMX_BF16")

# Every build, whatever the level: nothing tuned for the building CPU.
COMMON_OPTIONS = ("-DGGML_NATIVE=OFF",)


@dataclass(frozen=True)
class BuildLevel:
    name: str
    options: tuple[str, ...]  # ggml option names turned on, e.g. ("SSE42", "AVX", ...)

    def cmake_args(self) -> list[str]:
        """The CMake arguments for llama-cpp-python (CMAKE_ARGS) and the tools alike."""
        if self.name not in dict(X86_LEVELS):  # ARM and others: ggml's portable defaults
            return list(COMMON_OPTIONS)
        on = set(self.options)
        every = [name for name in OPTION_FLAGS if name != "AVX_VNNI" or "AVX_VNNI" in on]
        args = list(COMMON_OPTIONS)
        args += [f"-DGGML_{name}={'ON' if name in on else 'OFF'}" for name in every]
        args += [f"-DGGML_{name}=OFF" for name in NEVER]
        return args

    @property
    def key(self) -> str:
        """Cache and fingerprint key: the level's name and a hash of its exact arguments, so a
        change to the arguments can never reuse a build made with the old ones."""
        sha = hashlib.sha256(" ".join(self.cmake_args()).encode()).hexdigest()[:8]
        return f"{self.name}-{sha}"


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first processor listed in a /proc/cpuinfo text (x86 'flags' line)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def level_for_flags(flags: set[str]) -> BuildLevel:
    for name, options in X86_LEVELS:
        if all(set(OPTION_FLAGS[o]) <= flags for o in options):
            return BuildLevel(name, options)
    raise AssertionError("unreachable: the x64 level needs no flag")


def this_machine() -> BuildLevel:
    """The level for the machine this runs on. Non-x86 machines (ARM) get a level named after
    the architecture with ggml's defaults, since none of the x86 options apply there."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i686", "i386"):
        return BuildLevel(machine, ())
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return level_for_flags(cpu_flags(text))


def main(argv: list[str]) -> int:
    level = this_machine()
    if "--cmake" in argv:
        print(" ".join(level.cmake_args()))
    elif "--key" in argv:
        print(level.key)
    else:
        print(f"{level.name} ({level.key}): {' '.join(level.cmake_args())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
