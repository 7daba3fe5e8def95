"""A FastAPI pricing service: Black-Scholes prices of European options.

Served by Conveyor as ``App("pricing", "apps.pricing:app")`` behind ``/apps/pricing/``.
"""

from __future__ import annotations

import math

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
