"""Showing a job: state, progress bar, error sentence and the log tail."""

from __future__ import annotations

import streamlit as st

from catalog import jobfiles
from catalog.records import Job
from ui import fmt

STATE_ICONS = {"queued": ":material/schedule:", "waiting": ":material/link:", "running": ":material/autorenew:",
               "succeeded": ":green[:material/check_circle:]", "failed": ":red[:material/error:]",
               "cancelled": ":gray[:material/cancel:]", "interrupted": ":orange[:material/warning:]"}


def job_line(job: Job) -> str:
    return (f"{STATE_ICONS.get(job.state, '')} **{job.title or job.kind}** · {job.state_label} · "
            f"`{job.id}` · {fmt.duration(job.started_at, job.ended_at)}")


def render_job(job: Job, show_log: bool = False) -> None:
    st.markdown(job_line(job))
    if job.state == "running":
        progress = jobfiles.read_progress(job.id)
        st.progress(float(progress.get("fraction", 0.0)), text=progress.get("message") or "working")
    if job.error:
        st.error(job.error)
    if job.depends_on and job.state == "waiting":
        st.caption("Waits on: " + ", ".join(job.depends_on))
    if show_log or job.state in ("failed", "interrupted"):
        with st.expander("Log tail", expanded=False):
            st.code(jobfiles.read_log(job.id, tail_lines=60) or "(empty)", language="text")
