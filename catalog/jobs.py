"""Jobs in the catalog: submission with reuse, scheduling limits, leases and outcomes.

Every state change happens inside one catalog transaction, and all processes serialise on the
catalog lock, so "check the limits, then claim" is atomic across the app, the CLI and the
supervisor. Whether a running job is alive is decided from its lease (pid + process start
time + heartbeat file), never from whether the app restarted.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from catalog import calibration, config, db, jobfiles
from catalog.errors import ConflictError, NotFoundError
from catalog.files import remove_tree
from catalog.identity import new_job_id
from catalog.records import ACTIVE_JOB_STATES, ENDED_BADLY_STATES, Job, Variant
from catalog.variants import find_variant, variant_dir

log = logging.getLogger(__name__)

EXCLUSIVE_KINDS = ("benchmark",)  # run alone: nothing else starts while one runs
# A runner whose jobs run on other machines (worker/ray_executor.py): their pids mean nothing
# here, so only their heartbeat (on the shared data root) says they are alive.
CLUSTER_RUNNER_PREFIX = "cluster:"


@dataclass
class Submission:
    """What a submit gave back: a new job, a job already making it, or the finished variant."""

    job: Job | None = None
    variant: Variant | None = None
    reused: bool = False

    @property
    def message(self) -> str:
        if self.variant is not None:
            return f"This variant already exists ({self.variant.id}); nothing was queued."
        assert self.job is not None
        if self.reused:
            return f"The same recipe is already being made by job {self.job.id}; attached to it."
        return f"Queued job {self.job.id}."


def _now() -> datetime:
    return datetime.now(UTC)


def _get(conn: db.Database, job_id: str) -> Job:
    row = conn.one("SELECT * FROM jobs WHERE id = ?", [job_id])
    if not row:
        raise NotFoundError(f"No job has the id {job_id!r}.")
    job = Job.from_row(row)
    job.depends_on = [r["depends_on"] for r in conn.query(
        "SELECT depends_on FROM job_deps WHERE job_id = ?", [job_id])]
    return job


def get_job(job_id: str) -> Job:
    with db.connect(write=False) as conn:
        return _get(conn, job_id)


def find_job(job_id: str) -> Job | None:
    """The job, or None where its row is gone (a catalog from before jobs were kept)."""
    try:
        return get_job(job_id)
    except NotFoundError:
        return None


def list_jobs(states: tuple[str, ...] | None = None, source_id: str | None = None,
              limit: int = 200) -> list[Job]:
    where, params = ["TRUE"], []
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        params += list(states)
    if source_id:
        where.append("source_id = ?")
        params.append(source_id)
    with db.connect(write=False) as conn:
        # The newest ids first, then their rows: sorting whole rows (recipes, logs' tails) to keep 21
        # of a million jobs took 115 ms, the ids alone 24 ms (DuckDB 2.0, the perf script's scale 10).
        rows = conn.query(
            f"""SELECT * FROM jobs WHERE id IN (SELECT id FROM jobs WHERE {' AND '.join(where)}
                                              ORDER BY created_at DESC LIMIT ?)
                ORDER BY created_at DESC""",
            params + [limit])
        # Only the listed jobs' dependencies: job_deps grows with every chained conversion ever run.
        deps = conn.query("SELECT job_id, depends_on FROM job_deps WHERE job_id IN (SELECT unnest(?))",
                          [[r["id"] for r in rows]]) if rows else []
    by_job: dict[str, list[str]] = {}
    for d in deps:
        by_job.setdefault(d["job_id"], []).append(d["depends_on"])
    jobs = [Job.from_row(r) for r in rows]
    for job in jobs:
        job.depends_on = by_job.get(job.id, [])
    return jobs


def submit(
    kind: str,
    recipe: dict[str, Any],
    *,
    title: str,
    source_id: str | None = None,
    input_variant_id: str | None = None,
    target_variant_id: str | None = None,
    depends_on: list[str] | None = None,
    submitted_by: str | None = None,
) -> Submission:
    """Queue a job, unless its target variant exists or an active job is already making it."""
    with db.connect() as conn:
        if target_variant_id:
            existing = find_variant(target_variant_id)
            if existing is not None and existing.state == "available":
                return Submission(variant=existing)
            row = conn.one(
                f"SELECT id FROM jobs WHERE target_variant_id = ? AND state IN {ACTIVE_JOB_STATES}",
                [target_variant_id])
            if row:
                return Submission(job=_get(conn, row["id"]), reused=True)
        job_id = new_job_id()
        deps = [d for d in (depends_on or []) if d]
        pending = [d for d in deps if _get(conn, d).state != "succeeded"]
        conn.execute(
            """INSERT INTO jobs (id, kind, state, recipe, title, source_id, input_variant_id,
               target_variant_id, created_at, submitted_by) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            [job_id, kind, "waiting" if pending else "queued", json.dumps(recipe, sort_keys=True),
             title, source_id, input_variant_id, target_variant_id, _now(), submitted_by])
        conn.executemany("INSERT INTO job_deps VALUES (?, ?)", [(job_id, d) for d in deps])
        job = _get(conn, job_id)
    jobfiles.append_log(job_id, f"queued: {title}")
    jobfiles.notify_supervisor()
    return Submission(job=job)


def process_alive(pid: int | None, started: float | None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _awaiting_its_parent(pid: int | None, started: float | None) -> bool:
    """The job's process has ended but its parent (supervisor or CLI) has not collected its exit
    status yet. The parent will, and will name the signal that killed it; reading that as
    "vanished" here would turn a crash into an interruption."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE or (started and abs(proc.create_time() - started) >= 1.0):
            return False
        return proc.ppid() > 1 and psutil.pid_exists(proc.ppid())
    except psutil.Error:
        return False


def lease_alive(job: Job, timeout_s: float | None = None) -> bool:
    """A running job is alive while its process exists, or its heartbeat is fresh."""
    timeout = timeout_s if timeout_s is not None else config.load_settings().lease_timeout_s
    if runs_elsewhere(job):
        age = jobfiles.heartbeat_age(job.id)  # its executor beats it until the task has ended
        return age is not None and age < timeout
    if process_alive(job.pid, job.pid_started):
        return True
    if _awaiting_its_parent(job.pid, job.pid_started):
        age = jobfiles.heartbeat_age(job.id)
        return age is not None and age < timeout  # a wedged parent still loses the lease
    if job.pid is None and job.started_at is not None:
        # Claimed but not yet started: give the spawner the lease period to record the pid.
        age = (_now() - job.started_at.replace(tzinfo=UTC)).total_seconds()
        return age < timeout
    return False


def runs_elsewhere(job: Job) -> bool:
    return (job.runner or "").startswith(CLUSTER_RUNNER_PREFIX)


def _cleanup_leftovers(job: Job) -> None:
    """Remove what a dead or cancelled job may have left: its work area and unrecorded output."""
    remove_tree(jobfiles.work_dir(job.id))
    if job.target_variant_id and job.source_id:
        # Check and remove under the catalog lock: another job that made the same bytes (two
        # imports of one model) may be recording this very folder, and once it has, it is its.
        with db.connect(write=False):
            if find_variant(job.target_variant_id) is None:
                remove_tree(variant_dir(job.source_id, job.target_variant_id))


def set_target(job_id: str, source_id: str, variant_id: str) -> None:
    """Record what a job will place before it places anything (an import learns it only once it
    has hashed its input), so that cleanup after a kill knows which folder is the job's."""
    with db.connect() as conn:
        conn.execute("UPDATE jobs SET source_id = ?, target_variant_id = ? WHERE id = ?",
                     [source_id, variant_id, job_id])


def discard_output(job: Job) -> None:
    """Free a job's partial output before its failure is recorded (a full disk needs the room)."""
    _cleanup_leftovers(job)


def _fail_dependents(conn: db.Database, job_id: str, reason: str) -> None:
    rows = conn.query(
        f"""SELECT j.id FROM jobs j JOIN job_deps d ON d.job_id = j.id
            WHERE d.depends_on = ? AND j.state IN {ACTIVE_JOB_STATES}""", [job_id])
    for row in rows:
        conn.execute("UPDATE jobs SET state = 'failed', error = ?, ended_at = ? WHERE id = ?",
                     [reason, _now(), row["id"]])
        jobfiles.append_log(row["id"], f"failed: {reason}")
        _fail_dependents(conn, row["id"], f"Its parent job {row['id']} failed: {reason}")


def reconcile(conn: db.Database) -> list[str]:
    """Mark running jobs whose lease is dead as interrupted, clean their leftovers, and move
    waiting jobs along when their parents finished. Returns the ids whose state changed."""
    dead: list[str] = []
    for row in conn.query("SELECT * FROM jobs WHERE state = 'running'"):
        job = Job.from_row(row)
        if lease_alive(job):
            continue
        # Whoever waited on the process would have recorded a signal as a crash: nobody did,
        # so it went with its parent (the app, the supervisor, the machine).
        _interrupt(conn, job, "The job's process stopped without reporting, together with the app or the "
                              "machine that ran it; retry it.")
        dead.append(job.id)
    for row in conn.query("SELECT id FROM jobs WHERE state = 'waiting'"):
        deps = conn.query(
            "SELECT j.id, j.state, j.error FROM job_deps d JOIN jobs j ON j.id = d.depends_on "
            "WHERE d.job_id = ?", [row["id"]])
        bad = [d for d in deps if d["state"] in ENDED_BADLY_STATES]
        if bad:
            reason = f"Its parent job {bad[0]['id']} {bad[0]['state']}: {bad[0]['error'] or ''}".strip()
            conn.execute("UPDATE jobs SET state='failed', error=?, ended_at=? WHERE id=?",
                         [reason, _now(), row["id"]])
            jobfiles.append_log(row["id"], "failed: " + reason)
            dead.append(row["id"])
        elif all(d["state"] == "succeeded" for d in deps):
            conn.execute("UPDATE jobs SET state='queued' WHERE id=?", [row["id"]])
            dead.append(row["id"])
    return dead


def _interrupt(conn: db.Database, job: Job, reason: str) -> None:
    conn.execute("UPDATE jobs SET state = 'interrupted', error = ?, ended_at = ? WHERE id = ?",
                 [reason, _now(), job.id])
    jobfiles.append_log(job.id, "interrupted: " + reason)
    _cleanup_leftovers(job)
    _fail_dependents(conn, job.id, f"Its parent job {job.id} was interrupted.")


def interrupt(job_id: str, reason: str) -> bool:
    """Record that a running job's worker went away (a cluster node died, its executor stopped);
    its leftovers are removed. False when the job had already ended."""
    with db.connect() as conn:
        job = _get(conn, job_id)
        if job.state != "running":
            return False
        _interrupt(conn, job, reason)
    jobfiles.notify_supervisor()
    return True


def _may_start(running: list[Job], candidate: Job, max_parallel: int) -> bool:
    if any(j.kind in EXCLUSIVE_KINDS for j in running):
        return False
    if candidate.kind in EXCLUSIVE_KINDS:
        return not running
    return len(running) < max_parallel


def claim(runner: str, job_id: str | None = None) -> Job | None:
    """Atomically take the oldest startable queued job (or the given one) under the limits.

    Jobs start in submission order: a queued benchmark holds the conversions queued after it,
    and waits for those queued before it.
    """
    max_parallel = config.load_settings().max_parallel_conversions
    with db.connect() as conn:
        if reconcile(conn):
            # Commits with this transaction; a supervisor woken early just finds the lock held.
            jobfiles.notify_supervisor()
        running = [Job.from_row(r) for r in conn.query("SELECT * FROM jobs WHERE state='running'")]
        queued = [Job.from_row(r) for r in conn.query(
            "SELECT * FROM jobs WHERE state='queued' ORDER BY created_at, id")]
        for candidate in queued:
            if job_id is not None and candidate.id != job_id:
                if candidate.kind in EXCLUSIVE_KINDS:
                    return None  # an earlier benchmark goes first
                continue
            if not _may_start(running, candidate, max_parallel):
                return None
            conn.execute(
                "UPDATE jobs SET state='running', started_at=?, runner=?, pid=NULL, "
                "pid_started=NULL WHERE id=?", [_now(), runner, candidate.id])
            jobfiles.touch_heartbeat(candidate.id)
            return _get(conn, candidate.id)
        return None


def set_process(job_id: str, pid: int) -> None:
    started = psutil.Process(pid).create_time()
    with db.connect() as conn:
        conn.execute("UPDATE jobs SET pid=?, pid_started=? WHERE id=?", [pid, started, job_id])


def state_of(conn: db.Database, job_id: str) -> str | None:
    return conn.scalar("SELECT state FROM jobs WHERE id = ?", [job_id])


def mark_succeeded(conn: db.Database, job_id: str, result: dict[str, Any]) -> None:
    """Inside the caller's transaction, with the job's output recorded in the same one."""
    conn.execute("UPDATE jobs SET state='succeeded', ended_at=?, result=?, error=NULL WHERE id=?",
                 [_now(), json.dumps(result, default=str), job_id])


def finish(job_id: str, result: dict[str, Any] | None = None) -> None:
    with db.connect() as conn:
        conn.execute(
            "UPDATE jobs SET state='succeeded', ended_at=?, result=?, error=NULL WHERE id=? "
            "AND state='running'", [_now(), json.dumps(result or {}, default=str), job_id])
    jobfiles.write_progress(job_id, 1.0, "done")
    jobfiles.notify_supervisor()  # a slot is free, and dependents may start


def fail(job_id: str, sentence: str, state: str = "failed") -> None:
    with db.connect() as conn:
        job = _get(conn, job_id)
        if job.state not in ACTIVE_JOB_STATES:
            return
        conn.execute("UPDATE jobs SET state=?, ended_at=?, error=? WHERE id=?",
                     [state, _now(), sentence, job_id])
        _fail_dependents(conn, job_id, f"Its parent job {job_id} {state}: {sentence}")
        if job.kind == "convert":  # its calibration copy, unless another job or a variant uses it
            calibration.release(conn)
    jobfiles.append_log(job_id, f"{state}: {sentence}")
    jobfiles.notify_supervisor()


def crash(job_id: str, sentence: str, details: dict[str, Any], pid: int | None = None) -> bool:
    """Record that the job's process (pid, when given) or a tool it ran died from a signal.

    Leftovers are removed before the row is written, so a crash leaves no work folder and no
    unrecorded output even if recording fails. Returns False when the job had already ended
    (cancelled, or it recorded its own outcome) or has moved on to another attempt."""
    with db.connect() as conn:
        job = _get(conn, job_id)
        if job.state != "running" or (pid is not None and job.pid not in (None, pid)):
            return False
        _cleanup_leftovers(job)
        conn.execute("UPDATE jobs SET state='crashed', ended_at=?, error=?, result=? WHERE id=?",
                     [_now(), sentence, json.dumps({"crash": details}, default=str), job_id])
        _fail_dependents(conn, job_id, f"Its parent job {job_id} crashed: {sentence}")
    jobfiles.append_log(job_id, f"crashed: {sentence}")
    jobfiles.notify_supervisor()
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        psutil.Process(pid).wait(timeout=5)
    except psutil.TimeoutExpired:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    except psutil.Error:
        pass


def cancel(job_id: str) -> Job:
    """Stop a job: a queued one never starts, a running one's process group is killed."""
    job = get_job(job_id)
    if not job.active:
        raise ConflictError(f"Job {job_id} has already {job.state}; there is nothing to cancel.")
    fail(job_id, "Cancelled by a user.", state="cancelled")
    # A job on a cluster worker is stopped by its executor, which the cancel above woke.
    if job.state == "running" and not runs_elsewhere(job) and process_alive(job.pid, job.pid_started):
        _kill_group(job.pid)  # type: ignore[arg-type]
    _cleanup_leftovers(get_job(job_id))  # read again: an import records its target while it runs
    return get_job(job_id)


def retry(job_id: str) -> Job:
    """Queue a failed, crashed, cancelled or interrupted job again, with the same recipe."""
    with db.connect() as conn:
        job = _get(conn, job_id)
        if job.state not in ENDED_BADLY_STATES:
            raise ConflictError(f"Job {job_id} is {job.state}; only a job that ended badly can be retried.")
        for dep in job.depends_on:  # retry failed parents too, so the chain can complete
            if _get(conn, dep).state in ENDED_BADLY_STATES:
                retry(dep)  # which re-queues this job with them, unless a user cancelled it
        job = _get(conn, job_id)
        if job.state in ENDED_BADLY_STATES:
            _requeue(conn, job, "retry")
        again = _get(conn, job_id)
    jobfiles.notify_supervisor()
    return again


def _requeue(conn: db.Database, job: Job, why: str) -> None:
    """Queue a job again (waiting while a parent is unfinished), and with it every dependent that
    failed only because this job did, at any depth. A dependent a user cancelled stays so."""
    pending = [d for d in job.depends_on if _get(conn, d).state != "succeeded"]
    jobfiles.rotate_log(job.id, job.attempt)
    conn.execute(
        "UPDATE jobs SET state=?, attempt=attempt+1, error=NULL, result=NULL, started_at=NULL, "
        "ended_at=NULL, pid=NULL, pid_started=NULL, runner=NULL WHERE id=?",
        ["waiting" if pending else "queued", job.id])
    jobfiles.append_log(job.id, f"{why}: attempt {job.attempt + 1}")
    # A dependent never runs before its parents succeed, so a failed one failed for its parent.
    for row in conn.query("SELECT d.job_id FROM job_deps d JOIN jobs j ON j.id = d.job_id "
                          "WHERE d.depends_on = ? AND j.state = 'failed'", [job.id]):
        _requeue(conn, _get(conn, row["job_id"]), f"re-queued with its parent job {job.id}")


def reconcile_now() -> list[str]:
    with db.connect() as conn:
        changed = reconcile(conn)
    if changed:
        jobfiles.notify_supervisor()
    return changed
