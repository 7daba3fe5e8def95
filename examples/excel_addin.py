"""An Excel add-in that prices options on the server.

`conveyor dev examples` serves it at /apps/pricer/; in Excel, upload the manifest
from /apps/pricer/manifest.xml (Home > Add-ins > Upload my add-in), then write
`=PRICER.BLACK_SCHOLES(100, 105, 0.2, 0.01, 0.5)` in a cell. `=PRICER.TICKER(100)`
streams a price, `=PRICER.MONTE_CARLO(100, 105, 0.2, 0.01, 0.5, 20000)` reports its
progress in the cell before its result.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator

from conveyor import Addin, ExcelAddin, Queue

addin = Addin("Pricer", "Option pricing on the server")


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@addin.expose(description="Black-Scholes price of a European call", help="spot, strike, ...")
def black_scholes(spot: float, strike: float, vol: float, rate: float, expiry: float) -> float:
    if spot <= 0 or strike <= 0 or vol <= 0 or expiry <= 0:
        raise ValueError("spot, strike, vol and expiry must be more than 0")
    d1 = (math.log(spot / strike) + (rate + vol**2 / 2) * expiry) / (vol * math.sqrt(expiry))
    d2 = d1 - vol * math.sqrt(expiry)
    return spot * _normal_cdf(d1) - strike * math.exp(-rate * expiry) * _normal_cdf(d2)


@addin.expose(description="Call prices for a column of strikes (a range)")
def price_strikes(spot: float, strikes: list[list[float]], vol: float, expiry: float) -> list:
    return [[black_scholes(spot, row[0], vol, 0.0, expiry)] for row in strikes]


@addin.expose(description="A price that moves every half second", streaming=True)
def ticker(queue: Queue, start: float) -> float:
    price = start
    while True:  # until the cell is cleared: then push raises and this ends
        queue.push(round(price, 4))
        price *= math.exp(random.gauss(0, 0.01))
        time.sleep(0.5)


@addin.expose(description="The first n prices of a random walk", streaming=True)
def walk(start: float, n: int) -> Iterator[float]:
    price = start
    for _ in range(n):
        yield round(price, 4)
        price *= math.exp(random.gauss(0, 0.01))


@addin.expose(description="Monte Carlo price of a European call", progressbar=True)
def monte_carlo(
    queue: Queue, spot: float, strike: float, vol: float, rate: float, expiry: float, paths: int
) -> float:
    total = 0.0
    step = max(paths // 10, 1)
    for i in range(paths):
        if i % step == 0:
            queue.progress(i / paths, "simulating")
        z = random.gauss(0, 1)
        end = spot * math.exp((rate - vol**2 / 2) * expiry + vol * math.sqrt(expiry) * z)
        total += max(end - strike, 0.0)
    return math.exp(-rate * expiry) * total / max(paths, 1)


pricer = ExcelAddin("pricer", addin, description="Option pricing functions for Excel")
