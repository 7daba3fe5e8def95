"""A Panel app: a slider and a text that follows it.

``conveyor dev examples`` serves it as ``App("panel-app", "apps/panel_app.py")``
(examples/dashboards.py) behind ``/apps/panel-app/``.
"""

from __future__ import annotations

import panel as pn

BASE = [12.0, 15.0, 11.0, 18.0, 14.0]

scale = pn.widgets.IntSlider(name="Scale", start=1, end=5, value=2)


def total(value: int) -> str:
    return f"Total: {sum(BASE) * value:.0f} minutes"


pn.Column("# Run durations", scale, pn.bind(total, scale)).servable(title="Run durations")
