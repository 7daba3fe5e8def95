"""A workspace of one service that exits at once every time it starts."""

from __future__ import annotations

import sys

from conveyor import Service


def serve(port: int) -> None:
    print(f"crasher cannot serve on {port}: no model file", file=sys.stderr, flush=True)
    sys.exit(3)


crasher = Service("crasher", serve)
