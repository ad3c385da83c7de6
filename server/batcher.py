"""Gathers scoring requests from every client and stream into batches for the engine.

A batch closes when it holds ``max_fragments`` fragments or ``max_wait`` seconds after its first request,
whichever comes first. Requests are grouped by library snapshot and options, so each group is one engine
call; the engine runs on one worker thread, off the event loop, and new requests queue up meanwhile, so
batches grow with the load.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollmatch.scoring import Scorer
from rollmatch.verdict import Verdict

log = logging.getLogger("rollmatch.server")
#: Seconds between the batch statistics lines in the log.
STATS_INTERVAL_S = 30.0


@dataclass
class _Job:
    scorer: Scorer
    fragments: list[np.ndarray]
    origins: list[float]
    options: dict[str, Any]
    future: asyncio.Future[list[Verdict]]

    @property
    def key(self) -> tuple[Any, ...]:
        return (id(self.scorer), tuple(sorted((k, str(v)) for k, v in self.options.items())))


@dataclass
class BatchStats:
    batches: int = 0
    fragments: int = 0
    engine_seconds: float = 0.0  #: wall time spent in engine calls, all batches together
    sizes: list[int] = field(default_factory=list)  # since the last log line

    def add(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.fragments += size
        self.engine_seconds += seconds
        self.sizes.append(size)


class Batcher:
    """Collects scoring jobs into engine batches; one per server."""

    def __init__(self, *, max_fragments: int, max_wait_s: float) -> None:
        self.max_fragments = max_fragments
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollmatch-engine")
        self._task: asyncio.Task[None] | None = None
        self._last_log = time.monotonic()

    def start(self) -> None:
        log.info("batching: at most %d fragments or %.1f ms per batch", self.max_fragments, self.max_wait_s * 1e3)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rollmatch-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._engine.shutdown(wait=True, cancel_futures=True)
        self._log_stats(force=True)

    async def score(
        self, scorer: Scorer, fragments: list[np.ndarray], origins: list[float], options: dict[str, Any]
    ) -> list[Verdict]:
        """Verdicts for ``fragments``, scored in whichever batch they land in."""
        future: asyncio.Future[list[Verdict]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(scorer, fragments, origins, options, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].fragments)
            closes = loop.time() + self.max_wait_s
            while size < self.max_fragments:
                try:
                    job = await asyncio.wait_for(self._queue.get(), max(0.0, closes - loop.time()))
                except TimeoutError:
                    break
                batch.append(job)
                size += len(job.fragments)
            await self._execute(batch)

    async def _execute(self, batch: list[_Job]) -> None:
        groups: defaultdict[tuple[Any, ...], list[_Job]] = defaultdict(list)
        for job in batch:
            if not job.future.done():  # cancelled by its caller or past its deadline: skip the work
                groups[job.key].append(job)
        loop = asyncio.get_running_loop()
        for jobs in groups.values():
            fragments = [f for job in jobs for f in job.fragments]
            origins = [o for job in jobs for o in job.origins]
            first = jobs[0]
            try:
                call = functools.partial(_timed, first.scorer.score, fragments, origin_beats=origins, **first.options)
                verdicts, seconds = await loop.run_in_executor(self._engine, call)
            except Exception as exc:  # noqa: BLE001  (reaches each caller, which maps it to a status)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.stats.add(len(fragments), seconds)
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(verdicts[start : start + len(job.fragments)])
                start += len(job.fragments)
        self._log_stats()

    def _log_stats(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.stats.sizes or (not force and now - self._last_log < STATS_INTERVAL_S):
            return
        sizes = self.stats.sizes
        log.info(
            "batches: %d in the last %.0f s, %.1f fragments on average, largest %d; %d batches, %d fragments in all, "
            "%.3f s in the engine",
            len(sizes),
            now - self._last_log,
            sum(sizes) / len(sizes),
            max(sizes),
            self.stats.batches,
            self.stats.fragments,
            self.stats.engine_seconds,
        )
        self.stats.sizes = []
        self._last_log = now


def _timed(score: Any, *args: Any, **kwargs: Any) -> tuple[list[Verdict], float]:
    """``score(*args, **kwargs)`` and the seconds it took, measured on the engine thread itself."""
    began = time.perf_counter()
    verdicts = score(*args, **kwargs)
    return verdicts, time.perf_counter() - began
