"""Scoring fragments and files against an exemplar library, whole or window by window."""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND, array_module, backend_name
from .checks import number, whole_number
from .engine import BestMatches, SearchSpace, TemplateBank, match, resolve_method
from .errors import InputError, LibraryError, ParameterError
from .library import Library, label_arrays
from .notes import select_beats, span_beats
from .progress import Show, for_many, progress_bar
from .readers import TrackSelector, read_notes
from .verdict import Thresholds, Verdict, judge

#: Template banks (one per set of stretches) a Scorer keeps.
BANK_CACHE_SIZE = 8


class Critic(Protocol):
    """What judges fragments for a phrase search or a batch of files: a local :class:`Scorer`, or a
    :class:`~rollmatch.client.RemoteScorer` that asks a server."""

    engine: str  #: what scores, in words
    library_name: str
    library_version: str
    space: SearchSpace  #: the search space in force when a call names none
    thresholds: Thresholds  #: the thresholds in force when a call names none

    def score(
        self,
        fragments: Sequence[np.ndarray],
        *,
        space: SearchSpace | None = None,
        thresholds: Thresholds | None = None,
        origin_beats: Sequence[float] | None = None,
        top_k: int = 0,
    ) -> list[Verdict]: ...

    def score_batches(
        self, batches: Sequence[Sequence[np.ndarray]], *, thresholds: Thresholds | None = None
    ) -> list[list[Verdict]]: ...


class Scorer:
    """A library snapshot with its prepared template banks (one per set of stretches), ready to judge fragments.

    :attr:`space` and :attr:`thresholds` are the library's; :meth:`score` takes others per call. Of a space given
    per call only the stretches and the transposition range count: the grid, the cell values and the modes are
    the library's, as the exemplars were calibrated on them (a server takes the same two from a request).
    """

    def __init__(self, library: Library, *, backend: str = DEFAULT_BACKEND, progress: Show = False) -> None:
        if not library.exemplars:
            raise LibraryError(f"{library.path}: the library has no exemplars; add some with 'rollmatch library add'")
        self.library = library
        self.xp = array_module(backend)
        self.backend = backend_name(self.xp)
        self.method = resolve_method("auto", self.xp)  #: the engine computation used, 'sparse' or 'dense'
        self.engine = f"{self.backend} engine, {self.method} path"  #: what scores, in words
        self.library_name, self.library_version = library.config.name, library.version
        self.space = library.config.space
        self.thresholds = library.config.thresholds
        self._exemplar_notes = library.notes(progress=progress)
        self._banks: OrderedDict[SearchSpace, TemplateBank] = OrderedDict()
        self.ids = tuple(e.id for e in library.exemplars)
        self.modes = tuple(library.mode_of(e) for e in library.exemplars)
        self.is_bad, self.overrides = label_arrays(library.exemplars)

    def in_library(self, space: SearchSpace | None) -> SearchSpace:
        """The library's search space with the stretches and transposition range of ``space`` (None: as it is)."""
        if space is None:
            return self.space
        return self.space.overridden(stretches=space.stretches, transpose_range=space.transpose_range)

    def bank(self, space: SearchSpace | None = None) -> TemplateBank:
        """The template bank for the stretches of ``space`` (default: the library's), built on first use; the
        least recently used of more than BANK_CACHE_SIZE is dropped, so callers cycling through stretch sets
        cannot exhaust memory."""
        space = self.in_library(space)
        key = space.templates
        if key in self._banks:
            self._banks.move_to_end(key)
            return self._banks[key]
        self._banks[key] = TemplateBank(self._exemplar_notes, space, modes=self.modes, xp=self.xp)
        while len(self._banks) > BANK_CACHE_SIZE:
            self._banks.popitem(last=False)
        return self._banks[key]

    @property
    def stretch_sets(self) -> tuple[tuple[float, ...], ...]:
        """The stretch sets whose template banks are built, least recently used first."""
        return tuple(key.stretches for key in self._banks)

    def warm(self, spaces: Iterable[SearchSpace | None] = (None,)) -> None:
        """Build the template banks of these search spaces (None: the library's) and the sparse path's run
        tables now, so that the first fragments scored do not wait for them; e.g. before a server swaps this
        scorer in."""
        for space in spaces:
            bank = self.bank(space)
            if self.method == "sparse":
                bank.runs()
            else:
                _ = bank.time_energy_device  # built now, not on the first request

    def score(
        self,
        fragments: Sequence[np.ndarray],
        *,
        space: SearchSpace | None = None,
        thresholds: Thresholds | None = None,
        origin_beats: Sequence[float] | None = None,
        top_k: int = 0,
    ) -> list[Verdict]:
        """Judge each fragment (a note array in beats) by the veto rule, in ``space`` against ``thresholds``
        (None: the library's); an exemplar's own threshold still wins over its label's.
        ``origin_beats`` shifts each fragment's reported match positions (a window's start in its piece);
        ``top_k`` adds that many best matches of any label to each verdict.
        """
        top_k = whole_number(top_k, "top_k", at_least=0, at_most=defaults.MAX_TOP_K)
        space = self.in_library(space)
        best = self.similarities(fragments, space)
        return judge(
            best,
            self.ids,
            self.is_bad,
            self.overrides,
            self.thresholds if thresholds is None else thresholds,
            steps_per_beat=space.steps_per_beat,
            origin_beats=None if origin_beats is None else np.asarray(origin_beats, dtype=np.float64),
            top_k=top_k,
        )

    def score_batches(
        self, batches: Sequence[Sequence[np.ndarray]], *, thresholds: Thresholds | None = None
    ) -> list[list[Verdict]]:
        """Verdicts for each batch of fragments, in order, judged in one engine call."""
        verdicts = self.score([f for batch in batches for f in batch], thresholds=thresholds)
        ends = np.cumsum([len(batch) for batch in batches])
        return [verdicts[end - len(batch) : end] for batch, end in zip(batches, ends, strict=True)]

    def similarities(self, fragments: Sequence[np.ndarray], space: SearchSpace | None = None) -> BestMatches:
        """Best alignment of each of B fragments against each of K exemplars, before any threshold: (B, K)."""
        space = self.in_library(space)
        return match(fragments, self.bank(space), space, method=self.method)


def windows(
    notes: np.ndarray, *, window_beats: float, hop_beats: float | None = None
) -> list[tuple[float, float, np.ndarray]]:
    """Cut notes into windows [start, start + window) every ``hop_beats`` (default: the window), from beat 0
    until the last note ends. Each window's notes are clipped to it and start from its own beat 0."""
    window = number(window_beats, "window_beats", above=0)
    hop = window if hop_beats is None else number(hop_beats, "hop_beats", above=0)
    count = max(1, math.ceil(span_beats(notes) / hop))
    if count > defaults.MAX_WINDOWS:
        raise ParameterError(
            f"hop_beats={hop:g} cuts the piece into {count} windows; at most {defaults.MAX_WINDOWS} are allowed"
        )
    return [(i * hop, i * hop + window, select_beats(notes, i * hop, i * hop + window)) for i in range(count)]


@dataclass(frozen=True)
class FileResult:
    """The verdict on one file (or one window of it), or why it could not be scored."""

    file: str
    verdict: Verdict | None = None
    error: str | None = None
    start_beat: float | None = None
    end_beat: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.verdict is None:
            return {"file": self.file, "error": self.error}
        out: dict[str, Any] = {"file": self.file, **self.verdict.to_dict()}
        if self.start_beat is not None:
            out["start_beat"] = self.start_beat
            out["end_beat"] = self.end_beat
        return out


def score_files(
    paths: Sequence[str | os.PathLike[str]],
    scorer: Critic,
    *,
    window_beats: float | None = None,
    hop_beats: float | None = None,
    tracks: TrackSelector = None,
    space: SearchSpace | None = None,
    thresholds: Thresholds | None = None,
    progress: Show = False,
) -> Iterator[FileResult]:
    """Score each file whole, or window by window, in ``space`` against ``thresholds`` (None: the scorer's
    library's); an unreadable file yields an error result and the rest go on.

    Every option is validated before the first file is read, so a bad option fails fast.
    """
    if window_beats is not None:
        number(window_beats, "window_beats", above=0)
    if hop_beats is not None:
        if window_beats is None:
            raise ParameterError("hop_beats needs window_beats")
        number(hop_beats, "hop_beats", above=0)
    for path in progress_bar(paths, desc="scoring", unit="file", show=for_many(progress, len(paths))):
        name = str(path)
        try:
            notes = read_notes(path, tracks=tracks)
        except InputError as exc:
            yield FileResult(name, error=str(exc))
            continue
        if window_beats is None:
            yield FileResult(name, scorer.score([notes], space=space, thresholds=thresholds)[0])
            continue
        cut = windows(notes, window_beats=window_beats, hop_beats=hop_beats)
        verdicts = scorer.score(
            [w for _, _, w in cut], space=space, thresholds=thresholds, origin_beats=[s for s, _, _ in cut]
        )
        for (start, end, _), verdict in zip(cut, verdicts, strict=True):
            yield FileResult(name, verdict, start_beat=start, end_beat=end)
