"""A FastAPI pricing service: Black-Scholes prices of European options.

``conveyor dev examples`` runs it as ``Service("pricing", "apps.pricing:serve")``:
``serve(port)`` serves it with uvicorn, and the proxy forwards ``/apps/pricing/...``
to it as ``/...``. The app object alone serves as well, as
``App("pricing", "apps.pricing:app")``.
"""

from __future__ import annotations

import math
import os

from fastapi import FastAPI, Request

app = FastAPI(title="Option pricer")


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def black_scholes(spot: float, strike: float, years: float, rate: float, vol: float) -> float:
    """The price of a European call."""
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    return spot * _cdf(d1) - strike * math.exp(-rate * years) * _cdf(d2)


@app.get("/")
def index(request: Request) -> dict[str, str]:
    user = request.headers.get("x-conveyor-user", "anonymous")
    return {"service": "pricing", "user": user, "try": "price?spot=100&strike=95"}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/price")
def price(
    spot: float, strike: float, years: float = 1.0, rate: float = 0.02, vol: float = 0.2
) -> dict[str, float]:
    return {"call": round(black_scholes(spot, strike, years, rate, vol), 6)}


def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until stopped (the ``Service`` convention).

    The root path makes the links of ``/docs`` point under ``/apps/pricing/``.
    """
    import uvicorn

    root = os.environ.get("CONVEYOR_BASE_PATH", "")
    uvicorn.run(app, host="127.0.0.1", port=port, root_path=root, log_level="warning")
