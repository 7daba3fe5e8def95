"""A Dash dashboard of the examples' recent runs: how long each took, by job.

The page reads the run history when it loads (the list of jobs) and again in a
callback each time another job is picked (the chart and the counts), through
``run_history``. ``conveyor dev examples`` serves it as
``App("dash-dashboard", "apps.dash_dashboard:app")`` behind ``/apps/dash-dashboard/``;
Conveyor sets Dash's pathname prefixes.
"""

from __future__ import annotations

from dash import Dash, Input, Output, dcc, html

from apps.run_history import job_names, recent_runs, summary

app = Dash(__name__, title="Runs of the examples")

ALL = "*"  # never a job name: those are letters, digits, "_", "-" and "."


def layout() -> html.Div:
    """The page, with the jobs that have runs now (a function: read at each page load)."""
    jobs = job_names(recent_runs())
    return html.Div(
        [
            html.H1("Runs of the examples"),
            html.P("How long each recent run took, read from Conveyor's run history."),
            html.Label("Job", htmlFor="job"),
            dcc.Dropdown(
                id="job",
                options={ALL: "all jobs", **{job: job for job in jobs}},
                value=ALL,
                clearable=False,
                style={"maxWidth": "320px"},
            ),
            html.P(id="total"),
            dcc.Graph(id="chart", style={"height": "340px"}),
        ],
        style={"fontFamily": "sans-serif", "margin": "0 24px"},
    )


app.layout = layout


@app.callback(Output("chart", "figure"), Output("total", "children"), Input("job", "value"))
def update(job: str) -> tuple[dict[str, object], str]:
    chosen = None if job == ALL else job
    rows = [row for row in recent_runs(chosen, limit=50) if row.seconds is not None][::-1]
    traces = [
        {
            "type": "bar",
            "name": name,
            "x": [row.label for row in rows if row.job == name],
            "y": [row.seconds for row in rows if row.job == name],
        }
        for name in job_names(rows)
    ]
    figure: dict[str, object] = {
        "data": traces,
        "layout": {
            "margin": {"t": 20},
            "yaxis": {"title": {"text": "seconds"}},
            "xaxis": {
                "type": "category",
                "categoryorder": "array",
                "categoryarray": [row.label for row in rows],
                "showticklabels": False,
                "title": {"text": "runs, oldest first"},
            },
        },
    }
    return figure, summary(rows, chosen)
