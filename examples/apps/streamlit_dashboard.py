"""A Streamlit dashboard: a slider and a chart.

Served by Conveyor as ``App("streamlit-dashboard", "apps/streamlit_dashboard.py")`` behind
``/apps/streamlit-dashboard/``.
"""

from __future__ import annotations

import streamlit as st

DAYS = ["Nov 23", "Nov 24", "Nov 25", "Nov 26", "Nov 27"]
BASE = [12.0, 15.0, 11.0, 18.0, 14.0]

st.title("Run durations")
user = st.context.headers.get("X-Conveyor-User", "anonymous")
st.caption(f"Signed in as {user}")
scale = st.slider("Scale", min_value=1, max_value=5, value=2)
values = [v * scale for v in BASE]
st.write(f"Total: {sum(values):.0f} minutes")
st.bar_chart(dict(zip(DAYS, values, strict=True)))
