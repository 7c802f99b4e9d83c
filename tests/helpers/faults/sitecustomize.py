"""Failure injection for the crash tests, loaded by job processes through PYTHONPATH.

A test puts this folder on PYTHONPATH and sets MODEL_CATALOG_TEST_FAULT to
"<progress message prefix>=<fault>"; when a job reports progress starting with the prefix, the
fault happens in the real job process:

- SIGSEGV: a real segmentation fault (reading address 0), SIGILL / SIGBUS: that signal,
  SIGABRT: abort(), as a crashing native library would;
- tool:<program>: the job runs <program> as a tool through run_tool (it may abort);
- llama-load-segv: the next model load inside llama_cpp segfaults, so the crash happens
  beneath llama_cpp's own Python frames.
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("MODEL_CATALOG_TEST_FAULT", "")


def _segfault() -> None:
    import ctypes

    ctypes.string_at(0)


def _fire(ctx, fault: str) -> None:  # noqa: ANN001 - a JobContext; imported lazily
    import signal

    if fault == "SIGSEGV":
        _segfault()
    elif fault == "SIGABRT":
        os.abort()
    elif fault in ("SIGILL", "SIGBUS"):
        os.kill(os.getpid(), getattr(signal, fault))
    elif fault.startswith("tool:"):
        from backends.tools import run_tool

        run_tool([fault[len("tool:"):]], ctx.work_dir / "tool.log")
    elif fault == "llama-load-segv":
        import llama_cpp._internals as internals

        internals.llama_cpp.llama_model_load_from_file = lambda *args, **kwargs: _segfault()


def _install(spec: str) -> None:
    prefix, _, fault = spec.partition("=")
    from worker.context import JobContext

    original = JobContext.progress

    def progress(self, fraction: float, message: str = "") -> None:  # noqa: ANN001
        original(self, fraction, message)
        if message.startswith(prefix):
            _fire(self, fault)

    JobContext.progress = progress  # type: ignore[method-assign]


if _SPEC:
    _install(_SPEC)
