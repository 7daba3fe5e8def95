"""Where each chained trigger of a workspace starts, kept for every daemon to agree on.

A chain fires for the runs of its upstream that end after a daemon first saw
the chain, not for the history a home already holds. That point is the id of
the newest run end (``run_ends``) at that moment, recorded once: whichever
daemon records it first, the others and every restart read the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import func, select

from conveyor.storage.db import Database
from conveyor.storage.schema import chains, run_ends
from conveyor.storage.upsert import insert_or_update

Chain = tuple[str, str]  # (job name, trigger)


def chain_key(workspace: str, job_name: str, trigger: str) -> str:
    """The stored key of a chain: a digest, as a workspace's path may be long."""
    return hashlib.sha256(f"{workspace}\0{job_name}\0{trigger}".encode()).hexdigest()


class ChainStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def first_seen(self, workspace: str, seen: Iterable[Chain], at: float) -> dict[Chain, int]:
        """The id of the run end after which each chain ``(job, trigger)`` of ``workspace``
        fires: the newest end when a daemon first saw the chain.

        The chains not recorded yet are recorded now (``at`` is when), with the
        newest end now; a chain recorded already keeps its point, whoever
        recorded it.
        """
        wanted = {chain_key(workspace, job, trigger): (job, trigger) for job, trigger in seen}
        if not wanted:
            return {}
        with self.db.write() as conn:
            newest = int(conn.execute(select(func.max(run_ends.c.id))).scalar() or 0)
            conn.execute(
                insert_or_update(conn, chains, ["key"]),
                [
                    {
                        "key": key,
                        "workspace": workspace,
                        "job_name": job,
                        "trigger": trigger,
                        "after_end": newest,
                        "seen_at": at,
                    }
                    for key, (job, trigger) in wanted.items()
                ],
            )
            rows = conn.execute(
                select(chains.c.key, chains.c.after_end).where(chains.c.key.in_(list(wanted)))
            )
            return {wanted[row.key]: int(row.after_end) for row in rows}
