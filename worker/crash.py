"""Crash reports: a job whose process, or a tool it ran, died from a signal.

The process that waits on a job (the supervisor, or the CLI's runner) sees its exit status; a
job process sees its tools' exit statuses. Either turns a signal into one sentence that names
the step (the job's last progress message), who crashed (read from the Python stack that
faulthandler wrote to the job log, or the tool's name), the signal, and what to do. A SIGKILL
while the kernel's out-of-memory counters rose is reported as out of memory.
"""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

from catalog import diskspace, jobfiles, jobs
from catalog.files import folder_size
from worker.advice import NO_TOOLKITS, ToolkitFacts, estimated_disk_need

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30

# What a crash of each signal is called, and what the user can do about it.
VERBS: dict[int, str] = {
    signal.SIGSEGV: "segfaulted",
    signal.SIGILL: "hit an illegal instruction",
    signal.SIGBUS: "hit a bus error",
    signal.SIGABRT: "aborted",
    signal.SIGFPE: "hit an arithmetic fault",
    signal.SIGKILL: "was killed",
}
ADVICE: dict[int, str] = {
    signal.SIGILL: "this build uses CPU instructions this machine does not run; rerun the setup "
                   "(./scripts/run) so it rebuilds for this CPU, then retry",
    signal.SIGBUS: "a file it had mapped may have changed or the disk may be full; check the data root, "
                   "then retry",
}
DEFAULT_ADVICE = "retry it, or report the crash with the last lines of its log"

# Where a native crash happened, from the package of the innermost known frame: the toolkits'
# libraries (declared with each toolkit), then the ones every job uses.
SHARED_LIBRARIES = {"numpy": "NumPy", "duckdb": "DuckDB"}
# Progress prefixes ("smoke test: loading x.gguf") that name a step of their own.
SHARED_STEPS = {"smoke test": "the smoke test", "quality": "the quality measurement"}
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+ in (?P<func>\S+)')


@dataclass
class CrashReport:
    signal: str          # "SIGSEGV"
    number: int          # 11
    step: str            # the job's last progress message
    who: str             # "llama.cpp", "llama-quantize", "the job process"
    out_of_memory: bool
    log_tail: str
    steps: dict[str, str] = field(default_factory=dict)  # the toolkits' step names (ToolkitFacts.steps)

    @property
    def sentence(self) -> str:
        where, detail = describe_step(self.step, self.steps)
        while_ = f" while {detail}" if detail else ""
        if self.number == signal.SIGKILL:
            if self.out_of_memory:
                return (f"Stopped: out of memory; the system's out-of-memory killer ended {self.who} {where}. "
                        "Close other jobs or pick a smaller model or precision, then retry.")
            return (f"Stopped {where}: {self.who} was killed (SIGKILL) from outside the catalog, "
                    "possibly by the out-of-memory killer; retry it.")
        advice = ADVICE.get(self.number, DEFAULT_ADVICE)
        verb = VERBS.get(self.number, "died from a signal")
        return f"Crashed {where}: {self.who} {verb} ({self.signal}){while_}; {advice}."

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in asdict(self).items() if k != "steps"}, "sentence": self.sentence}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_step(step: str, toolkit_steps: dict[str, str] | None = None) -> tuple[str, str]:
    """("in the smoke test", "loading model-Q8_0.gguf") or ("while hashing files", ""); the
    toolkits' own step names (ToolkitFacts.steps) come from the caller."""
    step = step.strip().rstrip(".")
    if not step:
        return "while starting", ""
    prefix, sep, rest = step.partition(": ")
    steps = SHARED_STEPS | (toolkit_steps or {})
    if sep and prefix in steps:
        return f"in {steps[prefix]}", rest
    return f"while {step}", ""


def library_in_stack(log_text: str, toolkit_libraries: dict[str, str] | None = None) -> str | None:
    """The library of the innermost known frame of the last faulthandler dump in a job log; the
    toolkits' libraries (ToolkitFacts.libraries) come from the caller."""
    start = log_text.rfind("Fatal Python error")
    if start < 0:
        return None
    libraries = {**(toolkit_libraries or {}), **SHARED_LIBRARIES}
    for line in log_text[start:].splitlines():
        match = _FRAME.match(line)
        if match is None:
            continue
        parts = Path(match["path"]).parts
        for package, name in libraries.items():
            if package in parts:
                return name
    return None


# ------------------------------------------------------------------------ out-of-memory kills


def _counter(path: Path, key: str = "oom_kill") -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_counter_files() -> list[Path]:
    files: list[Path] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        rel = rel.lstrip("/")
        if controllers == "":  # cgroup v2
            files.append(Path("/sys/fs/cgroup") / rel / "memory.events")
        elif "memory" in controllers.split(","):  # cgroup v1
            files += [Path("/sys/fs/cgroup/memory") / rel / "memory.oom_control",
                      Path("/sys/fs/cgroup/memory/memory.oom_control")]
    return files


def oom_kill_count() -> int:
    """Out-of-memory kills seen so far by the kernel and this process's memory cgroup.

    Comparing two readings around a job tells whether the kernel killed something for memory
    meanwhile; with a job that died from SIGKILL, that is almost surely the job. No kernel
    log (dmesg) is needed, which an unprivileged process often may not read."""
    return _counter(Path("/proc/vmstat")) + sum(_counter(f) for f in _cgroup_counter_files())


# ------------------------------------------------------------------------------- the reports


def _log_tail(job_id: str) -> str:
    """The job log's last lines, then what the process itself printed (native libraries write
    their last words, such as a failed GGML_ASSERT, to stderr)."""
    parts = [jobfiles.read_log(job_id, tail_lines=LOG_TAIL_LINES)]
    out = jobfiles.read_tail(jobfiles.child_output_path(job_id), lines=15)
    if out.strip():
        parts.append("--- the job process's own output ---\n" + out)
    return "\n".join(p for p in parts if p.strip())


def process_report(job_id: str, signum: int, oom_before: int | None,
                   facts: ToolkitFacts = NO_TOOLKITS) -> CrashReport:
    """The job's own process died from a signal (seen by the process that waited on it)."""
    who = library_in_stack(jobfiles.read_log(job_id, tail_lines=400), dict(facts.libraries)) or "the job process"
    oom = oom_before is not None and oom_kill_count() > oom_before
    step = jobfiles.read_progress(job_id).get("message", "")
    return CrashReport(signal_name(signum), signum, step, who, oom, _log_tail(job_id), dict(facts.steps))


def tool_signal(exc: BaseException) -> int | None:
    """The signal that ended a tool the job ran (a negative exit status), or None."""
    code = getattr(exc, "returncode", None)
    return -code if isinstance(code, int) and code < 0 else None


def _tool_name(exc: BaseException) -> str:
    cmd = getattr(exc, "cmd", None)
    if cmd:
        first = cmd[0] if isinstance(cmd, list | tuple) else str(cmd).split()[0]
        return Path(str(first)).name
    words = str(exc).split()  # ToolFailed: "<tool> failed with exit status ..."
    return Path(words[0]).name if words else "a tool"


def tool_report(job_id: str, exc: BaseException, oom_before: int | None,
                facts: ToolkitFacts = NO_TOOLKITS) -> CrashReport:
    """A tool run by the job died from a signal; the job process itself is fine."""
    signum = tool_signal(exc) or 0
    oom = oom_before is not None and oom_kill_count() > oom_before
    step = jobfiles.read_progress(job_id).get("message", "")
    tail = getattr(exc, "log_tail", "") or _log_tail(job_id)
    return CrashReport(signal_name(signum), signum, step, _tool_name(exc), oom,
                       "\n".join(str(tail).splitlines()[-LOG_TAIL_LINES:]), dict(facts.steps))


# ------------------------------------------------------------------ for the process that waits


def handle_child_exit(job_id: str, pid: int, returncode: int, oom_before: int | None,
                      facts: ToolkitFacts = NO_TOOLKITS) -> None:
    """Record what a job's process could not record itself: its death by a signal, or an exit
    without an outcome (it could not write the row, e.g. with the disk full). facts: what the
    toolkits call their libraries, steps and disk needs (worker/toolkits.py), from the caller."""
    if returncode < 0:
        report = process_report(job_id, -returncode, oom_before, facts)
        if jobs.crash(job_id, report.sentence, report.as_dict(), pid=pid):
            log.warning("job %s: %s", job_id, report.sentence)
    elif returncode != 0:
        _record_unreported_exit(job_id, pid, returncode, facts)


def _record_unreported_exit(job_id: str, pid: int, returncode: int, facts: ToolkitFacts) -> None:
    job = jobs.get_job(job_id)
    if job.state != "running" or job.pid != pid:
        return  # it recorded its outcome, or another attempt runs now
    work = jobfiles.work_dir(job_id)
    written = folder_size(work) if work.exists() else 0
    jobs.discard_output(job)  # free first: the row below needs room in the catalog's write log
    if "no space left on device" in _log_tail(job_id).lower():
        need = max(written, estimated_disk_need(job, facts))
        sentence = diskspace.disk_full_sentence(need, diskspace.free_bytes())
    else:
        sentence = (f"The job's process exited with status {returncode} without recording why; "
                    "see the last lines of its log.")
    jobs.fail(job_id, sentence)
