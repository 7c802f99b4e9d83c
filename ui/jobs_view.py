"""Showing a job: state, progress bar, error sentence and the log tail."""

from __future__ import annotations

import streamlit as st

from catalog import jobfiles, jobs
from catalog.records import Job
from ui import fmt

STATE_ICONS = {"queued": ":material/schedule:", "waiting": ":material/link:", "running": ":material/autorenew:",
               "succeeded": ":green[:material/check_circle:]", "failed": ":red[:material/error:]",
               "crashed": ":red[:material/bug_report:]",
               "cancelled": ":gray[:material/cancel:]", "interrupted": ":orange[:material/warning:]"}


# What each way of ending badly means, so a crash is never mistaken for a user's cancel.
STATE_NOTES = {
    "crashed": "Crashed: the job's process, or a tool it ran, died from a signal.",
    "interrupted": "Interrupted: the job's process vanished with the app or the machine; retry it.",
}


# A job handed to a cluster that no worker has taken yet: Ray holds it until one has room or
# the hardware it asks for; its progress line says which.
WAITING_FOR_WORKER = "waiting for a worker"


def job_line(job: Job) -> str:
    node = jobfiles.read_node(job.id) if job.started_at else None
    waiting = job.state == "running" and jobs.runs_elsewhere(job) and node is None
    icon, label = (STATE_ICONS["queued"], WAITING_FOR_WORKER) if waiting else (STATE_ICONS.get(job.state, ""),
                                                                                 job.state_label)
    return (f"{icon} **{fmt.escape_md(job.title or job.kind)}** · {label} · "
            f"`{job.id}` · {fmt.duration(job.started_at, job.ended_at)}"
            + (f" · by {fmt.escape_md(job.submitted_by)}" if job.submitted_by else "")
            + _where(node))


def _where(node: dict | None) -> str:
    """The cluster worker a job ran on (Ray executor); nothing for this machine's own jobs."""
    if not node:
        return ""
    return f" · on {fmt.escape_md(str(node.get('hostname', '?')))} ({fmt.escape_md(str(node.get('node_ip', '?')))})"


def render_job(job: Job, show_log: bool = False) -> None:
    st.markdown(job_line(job))
    if job.state == "running":
        progress = jobfiles.read_progress(job.id)
        st.progress(float(progress.get("fraction", 0.0)), text=progress.get("message") or "working")
    if job.error:
        st.error(job.error)
    if job.state in STATE_NOTES:
        st.caption(STATE_NOTES[job.state])
    if job.depends_on and job.state == "waiting":
        st.caption("Waits on: " + ", ".join(job.depends_on))
    if job.crash:
        with st.expander(f"Crash: {job.crash.get('signal')} · last lines of its log", expanded=True):
            st.code(job.crash.get("log_tail") or "(empty)", language="text")
    elif show_log or job.state in ("failed", "interrupted"):
        with st.expander("Log tail", expanded=False):
            st.code(jobfiles.read_log(job.id, tail_lines=60) or "(empty)", language="text")
