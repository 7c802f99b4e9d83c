"""Jobs: live state, progress and logs of imports, conversions and benchmarks; cancel, retry."""

from __future__ import annotations

import streamlit as st

from catalog import jobs
from catalog.errors import CatalogError
from catalog.records import ACTIVE_JOB_STATES, ENDED_BADLY_STATES, JOB_STATES, Job
from service import actions
from ui.jobs_view import render_job
from ui.session import current_actor, gate

st.title("Jobs")
st.caption("Jobs run in their own processes, whether or not this page is open.")

states = st.multiselect("States", JOB_STATES, default=[], key="job_states",
                        help="Empty shows every state.")


# Ended jobs listed at first, and added by each "Show more": the list redraws every 2 s, and 100
# bordered rows with their buttons took most of that page's time at ten times the scale.
ENDED_PAGE = 20


def _show_more() -> None:
    st.session_state["jobs_ended_shown"] = st.session_state.get("jobs_ended_shown", ENDED_PAGE) + ENDED_PAGE


def _listed(chosen: tuple[str, ...]) -> tuple[list[Job], bool]:
    """Every active job of the chosen states (newest first), then the most recent ended ones;
    and whether older ended jobs are left out."""
    active_states = tuple(s for s in chosen if s in ACTIVE_JOB_STATES)
    ended_states = tuple(s for s in chosen if s not in ACTIVE_JOB_STATES)
    shown = st.session_state.get("jobs_ended_shown", ENDED_PAGE)
    active = jobs.list_jobs(states=active_states, limit=1000) if active_states else []
    ended = jobs.list_jobs(states=ended_states, limit=shown + 1) if ended_states else []
    return active + ended[:shown], len(ended) > shown


@st.fragment(run_every=2.0)
def job_list() -> None:
    jobs.reconcile_now()
    rows, more = _listed(tuple(states) or JOB_STATES)
    if not rows:
        st.info("No jobs yet. Import a model or start a conversion.")
        return
    may_manage = gate("manage_jobs")
    for job in rows:
        with st.container(border=True):
            render_job(job, show_log=job.state == "running")
            if not (job.active or job.state in ENDED_BADLY_STATES):
                continue  # a succeeded job has no button: no empty row under it
            c1, c2, _ = st.columns([1, 1, 6])
            try:
                if job.active and c1.button("Cancel", key=f"cancel_{job.id}", **may_manage):
                    actions.cancel_job(current_actor(), job.id)
                    st.rerun()
                if job.state in ENDED_BADLY_STATES and c2.button("Retry", key=f"retry_{job.id}", **may_manage):
                    actions.retry_job(current_actor(), job.id)
                    st.rerun()
            except CatalogError as exc:
                st.error(str(exc))
    if more:
        st.button("Show more ended jobs", key="jobs_show_more", on_click=_show_more,
                  help=f"Active jobs are all listed; ended ones {ENDED_PAGE} at a time, newest first.")


job_list()
