"""Process plumbing shared by the supervisor, job children and the tools they run."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from catalog import config

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the kernel kills this process when the thread that started it ends.

    Only safe when the parent starts it from a thread that lives as long as the parent
    (the supervisor's main loop, a job child's main thread).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the heartbeat watchdog still ends orphans
        pass


def child_environment() -> dict[str, str]:
    """The environment of every job process: same data root, offline, telemetry off."""
    env = dict(os.environ)
    env.update(config.offline_environment())
    env[config.ROOT_ENV] = str(config.data_root())
    env["PYTHONPATH"] = os.pathsep.join(
        [str(config.PROJECT_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def python() -> str:
    return sys.executable
