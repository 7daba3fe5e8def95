"""A Streamlit dashboard of the examples' runs: their durations, and the summaries that
``fan_out`` (every five minutes under ``make run``) returned.

It reads the run history and the runs' results through ``run_history`` on each
rerun (each widget change comes over Streamlit's WebSocket). ``conveyor dev
examples`` serves it as ``App("streamlit-dashboard", "apps/streamlit_dashboard.py")``
behind ``/apps/streamlit-dashboard/``.
"""

from __future__ import annotations

import streamlit as st

from apps.run_history import job_names, recent_runs, results, summary

ALL = "all jobs"

st.set_page_config(page_title="Runs of the examples")
st.title("Runs of the examples")
user = st.context.headers.get("X-Conveyor-User", "anonymous")
st.caption(f"Signed in as {user}")

runs = recent_runs()
job = st.selectbox("Job", [ALL, *job_names(runs)])
chosen = None if job == ALL else job
ended = [r for r in runs if r.seconds is not None and (chosen is None or r.job == chosen)][:50]
st.write(summary(ended, chosen))
if ended:
    oldest_first = ended[::-1]
    st.bar_chart(
        {
            "run": [r.label for r in oldest_first],
            "seconds": [r.seconds for r in oldest_first],
            "job": [r.job for r in oldest_first],
        },
        x="run",
        y="seconds",
        color="job",
        sort=False,
    )

st.subheader("What fan_out returned")
summaries = results("fan_out", "combine")
if summaries:
    last_run, last = summaries[-1]
    st.write(f"Latest: mean {last['mean']}, range {last['range']} (run {last_run.id[:8]})")
    st.scatter_chart(
        {
            "run": [run.label for run, _ in summaries],
            "mean": [value["mean"] for _, value in summaries],
            "range": [value["range"] for _, value in summaries],
        },
        x="run",
        y=["mean", "range"],
    )
else:
    st.info("No run of fan_out has succeeded yet: it runs every five minutes, or launch it now.")
