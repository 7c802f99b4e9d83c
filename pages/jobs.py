"""Jobs: live state, progress and logs of imports, conversions and benchmarks; cancel, retry."""

from __future__ import annotations

import streamlit as st

from catalog import jobs
from catalog.errors import CatalogError
from catalog.records import ENDED_BADLY_STATES, JOB_STATES
from service import actions
from ui.jobs_view import render_job
from ui.session import current_actor, gate

st.title("Jobs")
st.caption("Jobs run in their own processes, whether or not this page is open.")

states = st.multiselect("States", JOB_STATES, default=[], key="job_states",
                        help="Empty shows every state.")


@st.fragment(run_every=2.0)
def job_list() -> None:
    jobs.reconcile_now()
    rows = jobs.list_jobs(states=tuple(states) or None, limit=100)
    if not rows:
        st.info("No jobs yet. Import a model or start a conversion.")
        return
    may_manage = gate("manage_jobs")
    for job in rows:
        with st.container(border=True):
            render_job(job, show_log=job.state == "running")
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


job_list()
