"""Run a command-line tool as part of a job: its output goes to the job log and to a progress callback.

Shared by every toolkit (llama.cpp's tools and converter, the ONNX Runtime GenAI model builder).
Nothing here knows a toolkit: a toolkit resolves its own program names (llamacpp_tools.tool_path)
and passes the path.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import shlex
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import BinaryIO

from worker.proc import die_with_parent

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]

QUIET_S = 0.25  # output that sits this long without a newline is passed on as a line
TAIL_LINES = 40  # lines of output a ToolFailed carries


class ToolMissing(RuntimeError):
    """A tool (a llama.cpp tool, the converter, its source) is not installed; the message says how to fix it."""

    user_message = True  # the job shows this sentence as is


class ToolFailed(RuntimeError):
    """A tool exited with an error; carries the tail of its log."""

    user_message = True

    def __init__(self, message: str, *, returncode: int | None, log_path: Path, log_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_path = log_path
        self.log_tail = log_tail


def _tail(lines: deque[str], n: int = TAIL_LINES) -> str:
    return "\n".join(list(lines)[-n:])


def run_tool(
    args: Sequence[str | os.PathLike[str]],
    log_path: str | os.PathLike[str],
    progress_cb: ProgressCallback | None = None,
    timeout: float | None = None,
    *,
    ok_returncodes: Collection[int] = (0,),
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> int:
    """Run a tool, appending its stdout and stderr to log_path as they arrive.

    args[0] is the program: a path, or a bare name looked up on PATH (ToolMissing if absent).
    progress_cb receives each output line; text that sits without a newline for a moment is passed
    on too, because llama-perplexity prints its running estimates ("[1]12.3,[2]11.8,") on a single
    line. Returns the exit status; raises ToolFailed (with the log tail) on another status or on
    timeout.
    """
    program = _resolve_program(args[0])
    cmd = [program, *(str(a) for a in args[1:])]
    log_file = Path(log_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    output = _Output(progress_cb)

    logger.info("running %s", shlex.join(cmd))
    deadline = _deadline(timeout)
    with log_file.open("ab") as log:
        log.write(f"$ {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = _start(cmd, env, cwd)
        assert proc.stdout is not None
        try:
            timed_out = _pump(proc, log, output, deadline)
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if timed_out:
            log.write(f"\n[killed after {timeout} s]\n".encode())

    _check(Path(program).name, returncode, timed_out, timeout, ok_returncodes, log_file, output.tail)
    return returncode


def _resolve_program(first: str | os.PathLike[str]) -> str:
    """args[0] as Popen gets it: a path as is, a bare name looked up on PATH."""
    program = str(first)
    if os.sep in program:
        return program
    found = shutil.which(program)
    if found is None:
        raise ToolMissing(f"The program {program} was not found on PATH.")
    return found


def _start(cmd: list[str], env: dict[str, str] | None, cwd: str | os.PathLike[str] | None) -> subprocess.Popen[bytes]:
    """Start the tool with stdout and stderr on one pipe and no stdin."""
    # die_with_parent: a tool must not outlive its job process (supervisor killed, job cancelled).
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent,
                            env=None if env is None else {**os.environ, **env}, cwd=cwd)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


class _Output:
    """The tool's output as lines: the last ones kept for the error message, each passed to progress_cb.

    Lines end at \\r or \\n. A partial line is held until its end arrives, or until the tool has
    been quiet for QUIET_S (flush_partial), since some tools print progress on a single line.
    """

    def __init__(self, progress_cb: ProgressCallback | None) -> None:
        self.tail: deque[str] = deque(maxlen=200)
        self._progress_cb = progress_cb
        self._pending = ""

    def feed(self, chunk: bytes) -> None:
        parts = re.split(r"[\r\n]", self._pending + chunk.decode("utf-8", errors="replace"))
        self._pending = parts.pop()
        for part in parts:
            self._emit(part)

    def flush_partial(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""

    def _emit(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        self.tail.append(text)
        if self._progress_cb is not None:
            try:
                self._progress_cb(text)
            except Exception:  # a broken UI callback must not kill a long quantization
                logger.exception("progress callback failed")


def _pump(proc: subprocess.Popen[bytes], log: BinaryIO, output: _Output, deadline: float | None) -> bool:
    """Copy the tool's output to the log and to `output` until it exits (or the deadline passes:
    it is then killed). Returns True when it was killed for the deadline."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    timed_out = False
    try:
        while True:
            if _expired(deadline):
                timed_out = True
                proc.kill()
                break
            if not sel.select(timeout=QUIET_S):
                output.flush_partial()  # quiet for a moment: pass on a partial line
                if proc.poll() is not None:
                    break  # exited, and no more output is pending
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            output.feed(chunk)
        output.flush_partial()
    finally:
        sel.close()
    return timed_out


def _check(name: str, returncode: int, timed_out: bool, timeout: float | None, ok_returncodes: Collection[int],
           log_file: Path, tail: deque[str]) -> None:
    """Raise ToolFailed, with the log tail, for a timeout or an exit status not in ok_returncodes."""
    if timed_out:
        raise ToolFailed(f"{name} did not finish within {timeout:g} seconds and was stopped; "
                         f"its log is {log_file}.", returncode=None, log_path=log_file, log_tail=_tail(tail))
    if returncode not in ok_returncodes:
        last = next((line for line in reversed(tail) if line), "no output")
        raise ToolFailed(f"{name} failed with exit status {returncode} ({last}); its log is {log_file}.",
                         returncode=returncode, log_path=log_file, log_tail=_tail(tail))
