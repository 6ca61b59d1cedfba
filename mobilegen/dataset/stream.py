"""A parallel map that never holds more than a window of work: memory stays flat whether the input
has a hundred items or a million, and results come back in input order, so what "first" means
(which of two identical downloads is kept, say) does not depend on thread timing."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    value: R | None  # fn(item), when it returned
    error: BaseException | None  # what fn(item) raised (an Exception), else None


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int | None = None) -> Iterator[Outcome[T, R]]:
    """fn over items on `workers` threads, yielding an Outcome per item in input order. At most
    `window` items (default 2 * workers) are submitted and not yet yielded; `items` is consumed
    lazily. An exception from fn is returned in its Outcome, never raised here; KeyboardInterrupt
    cancels what has not started."""
    if workers < 1:
        raise ValueError(f"workers {workers}: expected at least 1")
    window = window or 2 * workers
    it = iter(items)
    pending: deque[tuple[T, Future]] = deque()
    with ThreadPoolExecutor(workers) as pool:
        try:
            for item in it:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= window:
                    yield _outcome(*pending.popleft())
            while pending:
                yield _outcome(*pending.popleft())
        finally:
            for _, fut in pending:
                fut.cancel()


def _outcome(item, fut: Future) -> Outcome:
    err = fut.exception()
    if err is not None and not isinstance(err, Exception):
        raise err
    return Outcome(item, None if err is not None else fut.result(), err)
