"""A task that fails on its first try and succeeds when retried.

Launch `flaky` from its job page: the run page's timeline shows
`fetch_quotes` failing once, then its retry a second later succeeding.
"""

from __future__ import annotations

from conveyor import RetryPolicy, TaskContext, task, workflow


@task(retry=RetryPolicy(max_retries=2, delay="1s"))
def fetch_quotes(context: TaskContext) -> list[float]:
    """Times out on the first try, as flaky feeds do."""
    if context.attempt == 1:
        raise ConnectionError("the quote feed timed out (it does on a first try)")
    print(f"attempt {context.attempt}: got the quotes")
    return [1.5, 2.5, 3.0]


@task
def store(quotes: list[float]) -> int:
    print(f"stored {len(quotes)} quotes")
    return len(quotes)


@workflow(tags={"team": "ops"})
def flaky() -> None:
    """Fetch quotes (retried after a failure), then store them."""
    store(fetch_quotes())
