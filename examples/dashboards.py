"""The examples' long-running workloads: a pricing service and four web apps, one per framework.

`make run` (`conveyor dev examples`) starts each one on a loopback port of its own
and serves it at http://127.0.0.1:3000/apps/<name>/; the page /workloads lists
them with their state, logs and buttons. Their code is in examples/apps/; names
are relative to this folder and nothing of it is imported here, so loading the
workspace (which every run does) stays cheap. The two dashboards read the run
history of the jobs beside them.
"""

from __future__ import annotations

from conveyor import App, Service

pricing = Service(
    "pricing",
    "apps.pricing:serve",
    description="FastAPI option pricer: /apps/pricing/price?spot=100&strike=95",
    health="/health",
)

hello_flask = App(
    "hello-flask",
    "apps.hello_flask:app",
    description="Flask page that greets whoever is signed in",
)

dash_dashboard = App(
    "dash-dashboard",
    "apps.dash_dashboard:app",
    description="Dash dashboard: how long the recent runs took, by job",
)

streamlit_dashboard = App(
    "streamlit-dashboard",
    "apps/streamlit_dashboard.py",
    description="Streamlit dashboard: recent runs and what fan_out returned",
)

panel_app = App(
    "panel-app",
    "apps/panel_app.py",
    description="Panel app: a slider and a text that follows it",
)
