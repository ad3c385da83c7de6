"""The library a server scores with, kept current without a restart.

Two things change it: the server's own curation calls, and any other writer of the directory (the CLI, another
server, a hand edit), which :meth:`LibraryState.watch` notices by a stat of the manifest and of each exemplar
file (every second by default). Either way a new :class:`~rollmatch.Scorer` is built on a worker thread, with its
template banks, and then swapped in by one assignment.

- Scoring takes :attr:`LibraryState.scorer` once per call and keeps it to the end, so a swap never touches a
  call in flight, and scoring never waits for a lock.
- Swaps are serialized by one asyncio lock, and a reload reads the directory while holding it, so each served
  snapshot was read after the one it replaces: the version never goes back, and a curation call's own version
  is not loaded a second time by the watcher.
- A version that fails to load (a hand edit that broke the manifest, an unreadable exemplar file, an empty
  library) leaves the served one in place, is logged once, and is tried again at the next change on disk or
  after ``retry_s`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from rollmatch import defaults
from rollmatch.errors import RollmatchError
from rollmatch.library import Library, Stamps, changed_since, stamps_now
from rollmatch.manifest import MANIFEST_NAME
from rollmatch.scoring import Scorer

log = logging.getLogger("rollmatch.server")


def prepared(library: Library, *, backend: str, like: Scorer | None = None) -> Scorer:
    """A scorer for ``library`` with the template banks of the default stretches and of every stretch set
    ``like`` (the scorer it replaces) had built, so the first calls after a swap find them ready."""
    scorer = Scorer(library, backend=backend)
    earlier = like.stretch_sets if like is not None else ()
    scorer.warm((None, *(scorer.space.overridden(stretches=stretches) for stretches in earlier)))
    return scorer


class LibraryState:
    """The library snapshot being served and its scorer; see the module's docstring for how it changes."""

    def __init__(self, library: Library, *, backend: str, retry_s: float = defaults.LIBRARY_RETRY_S) -> None:
        self.backend = backend
        self.retry_s = retry_s
        self.scorer = prepared(library, backend=backend)
        #: Why the directory's current version cannot be served, while that lasts.
        self.failure: str | None = None
        self._seen: Stamps = library.stamps  # what the last read of the directory saw, served or not
        self._retry_at = math.inf
        self._changing = asyncio.Lock()

    @property
    def library(self) -> Library:
        return self.scorer.library

    async def change(self, edit: Callable[[Library], Library]) -> Library:
        """Apply ``edit`` (a locked, atomic library write) off the event loop and serve the result."""
        async with self._changing:
            library = await asyncio.to_thread(edit, self.library)
            self._serve(await asyncio.to_thread(self._scorer_for, library), library.stamps, "curation call")
            return library

    async def refresh(self) -> bool:
        """Serve the directory's current version if it changed on disk since it was last read. True when a
        new version is now served; a version that fails to load leaves the served one in place."""
        if not await asyncio.to_thread(self._due):
            return False
        async with self._changing:
            if not await asyncio.to_thread(self._due):
                return False  # a curation call served it meanwhile
            path = self.library.path
            seen = await asyncio.to_thread(stamps_now, path, (MANIFEST_NAME,))  # what a failed read saw
            try:
                library = await asyncio.to_thread(Library.open, path)
                seen = library.stamps
                scorer = await asyncio.to_thread(self._scorer_for, library)
            except Exception as exc:  # noqa: BLE001  (any failure keeps the served version; _failed logs it)
                self._failed(exc, seen)
                return False
            swapped = scorer is not self.scorer
            self._serve(scorer, seen, "library changed on disk")
            return swapped

    async def watch(self, interval_s: float) -> None:
        """Check the directory every ``interval_s`` seconds and serve each new version, until cancelled."""
        log.info("watching library %s for changes every %g s", self.library.path, interval_s)
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # a bug: log it and keep watching rather than stop silently
                log.exception("checking library %s for changes failed", self.library.path)

    def _scorer_for(self, library: Library) -> Scorer:
        """The served scorer if ``library`` is its version (a file touched, or changed and changed back, or a
        curation call that changed nothing), else a new one, prepared."""
        if library.version == self.library.version:
            return self.scorer
        return prepared(library, backend=self.backend, like=self.scorer)

    def _due(self) -> bool:
        return changed_since(self.library.path, self._seen) or time.monotonic() >= self._retry_at

    def _serve(self, scorer: Scorer, seen: Stamps, why: str) -> None:
        old = self.library
        if scorer is not self.scorer:
            log.info(
                "%s: serving version %s (%d exemplars), was %s",
                why,
                scorer.library.version,
                len(scorer.library.exemplars),
                old.version,
            )
        elif self.failure is not None:
            log.info("library %s loads again, at the version already served (%s)", old.path, old.version)
        self.scorer = scorer
        self._seen = seen
        self.failure = None
        self._retry_at = math.inf

    def _failed(self, exc: Exception, seen: Stamps) -> None:
        message = str(exc) if isinstance(exc, RollmatchError) else f"{type(exc).__name__}: {exc}"
        if message != self.failure:  # one line per problem, not one per retry
            log.warning(
                "library %s changed on disk but cannot be loaded, still serving version %s (retrying on the next "
                "change or in %g s): %s",
                self.library.path,
                self.library.version,
                self.retry_s,
                message,
                exc_info=None if isinstance(exc, RollmatchError) else exc,
            )
        self.failure = message
        self._seen = seen
        self._retry_at = time.monotonic() + self.retry_s
