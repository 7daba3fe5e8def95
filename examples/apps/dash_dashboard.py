"""A Dash dashboard: a slider and a chart updated by a callback.

Served by Conveyor as ``App("dash-dashboard", "apps.dash_dashboard:app")`` behind
``/apps/dash-dashboard/``; Conveyor sets Dash's pathname prefixes.
"""

from __future__ import annotations

from dash import Dash, Input, Output, dcc, html

app = Dash(__name__, title="Run durations")

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
BASE = [12.0, 15.0, 11.0, 18.0, 14.0]

app.layout = html.Div(
    [
        html.H1("Run durations"),
        html.Label("Scale", htmlFor="scale"),
        dcc.Slider(id="scale", min=1, max=5, step=1, value=2),
        html.P(id="total"),
        dcc.Graph(id="chart", style={"height": "340px"}),
    ]
)


@app.callback(Output("chart", "figure"), Output("total", "children"), Input("scale", "value"))
def update(scale: int) -> tuple[dict[str, object], str]:
    values = [v * scale for v in BASE]
    figure = {"data": [{"type": "bar", "x": DAYS, "y": values}], "layout": {"margin": {"t": 20}}}
    return figure, f"Total: {sum(values):.0f} minutes"
