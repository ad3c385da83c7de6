"""Scoring fragments and files against an exemplar library, whole or window by window."""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND, array_module, backend_name
from .checks import number, whole_number
from .engine import BestMatches, TemplateBank, check_stretches, check_transpose_range, match, resolve_method
from .errors import InputError, LibraryError, ParameterError
from .library import Library
from .notes import select_beats, span_beats
from .readers import TrackSelector, read_notes
from .verdict import Verdict, check_coverage, check_threshold, exemplar_thresholds, judge, label_arrays

Progress = Callable[[str], None]
#: Template banks (one per stretch set) a Scorer keeps.
BANK_CACHE_SIZE = 8


class Scorer:
    """A library snapshot with its prepared template banks (one per stretch set), ready to judge fragments."""

    def __init__(self, library: Library, *, backend: str = DEFAULT_BACKEND, progress: Progress | None = None) -> None:
        if not library.exemplars:
            raise LibraryError(f"{library.path}: the library has no exemplars; add some with 'rollmatch library add'")
        self.library = library
        self.xp = array_module(backend)
        self.backend = backend_name(self.xp)
        self.method = resolve_method("auto", self.xp)  #: the engine computation used, 'sparse' or 'dense'
        self.engine = f"{self.backend} engine, {self.method} path"  #: what scores, in words
        self._exemplar_notes = library.notes(progress=progress)
        self._banks: OrderedDict[tuple[float, ...], TemplateBank] = OrderedDict()
        self.ids = tuple(e.id for e in library.exemplars)
        self.modes = tuple(library.mode_of(e) for e in library.exemplars)
        self.is_bad, self.overrides = label_arrays(library.exemplars)

    def bank(self, stretches: Sequence[float]) -> TemplateBank:
        """The template bank for a stretch set, built on first use; the least recently used of more than
        BANK_CACHE_SIZE sets is dropped, so callers cycling through stretch sets cannot exhaust memory."""
        key = check_stretches(stretches)
        if key in self._banks:
            self._banks.move_to_end(key)
            return self._banks[key]
        config = self.library.config
        self._banks[key] = TemplateBank(
            self._exemplar_notes,
            stretches=key,
            steps_per_beat=config.steps_per_beat,
            velocity=config.velocity,
            modes=self.modes,
            xp=self.xp,
        )
        while len(self._banks) > BANK_CACHE_SIZE:
            self._banks.popitem(last=False)
        return self._banks[key]

    @property
    def stretch_sets(self) -> tuple[tuple[float, ...], ...]:
        """The stretch sets whose template banks are built, least recently used first."""
        return tuple(self._banks)

    def warm(self, stretch_sets: Iterable[Sequence[float]] = (defaults.STRETCHES,)) -> None:
        """Build the template banks of these stretch sets (and the sparse path's run tables) now, so that the
        first fragments scored do not wait for them; e.g. before a server swaps this scorer in."""
        for stretches in stretch_sets:
            bank = self.bank(stretches)
            if self.method == "sparse":
                bank.runs()
            else:
                _ = bank.time_energy_device  # built now, not on the first request

    def score(
        self,
        fragments: Sequence[np.ndarray],
        *,
        transpose_range: int = defaults.TRANSPOSE_RANGE,
        stretches: Sequence[float] = defaults.STRETCHES,
        good_threshold: float | None = None,
        bad_threshold: float | None = None,
        min_coverage: float | None = None,
        origin_beats: Sequence[float] | None = None,
        top_k: int = 0,
    ) -> list[Verdict]:
        """Judge each fragment (a note array in beats) by the veto rule.

        Thresholds and ``min_coverage`` given here replace the library's; an exemplar's own threshold still
        wins over both.
        ``origin_beats`` shifts each fragment's reported match positions (a window's start in its piece);
        ``top_k`` adds that many best matches of any label to each verdict.
        """
        top_k = whole_number(top_k, "top_k", at_least=0, at_most=defaults.MAX_TOP_K)
        thresholds = self.thresholds(good_threshold=good_threshold, bad_threshold=bad_threshold)
        coverage = self.min_coverage(min_coverage)
        best = self.similarities(fragments, transpose_range=transpose_range, stretches=stretches)
        return judge(
            best,
            self.ids,
            self.is_bad,
            thresholds,
            steps_per_beat=self.library.config.steps_per_beat,
            min_coverage=coverage,
            origin_beats=None if origin_beats is None else np.asarray(origin_beats, dtype=np.float64),
            top_k=top_k,
        )

    def similarities(
        self,
        fragments: Sequence[np.ndarray],
        *,
        transpose_range: int = defaults.TRANSPOSE_RANGE,
        stretches: Sequence[float] = defaults.STRETCHES,
    ) -> BestMatches:
        """Best alignment of each of B fragments against each of K exemplars, before any threshold: (B, K)."""
        return match(fragments, self.bank(stretches), transpose_range=transpose_range, method=self.method)

    def label_thresholds(
        self, *, good_threshold: float | None = None, bad_threshold: float | None = None
    ) -> tuple[float, float]:
        """The good and bad thresholds in force for exemplars without their own: the given ones, else the library's."""
        config = self.library.config
        return (
            check_threshold(config.good_threshold if good_threshold is None else good_threshold, "good_threshold"),
            check_threshold(config.bad_threshold if bad_threshold is None else bad_threshold, "bad_threshold"),
        )

    def min_coverage(self, min_coverage: float | None = None) -> float:
        """The coverage a good match needs for GOOD: the given one, else the library's."""
        return check_coverage(self.library.config.min_coverage if min_coverage is None else min_coverage)

    def thresholds(self, *, good_threshold: float | None = None, bad_threshold: float | None = None) -> np.ndarray:
        """The threshold in force for each exemplar, shape (K,): its own, else that of its label."""
        good, bad = self.label_thresholds(good_threshold=good_threshold, bad_threshold=bad_threshold)
        return exemplar_thresholds(self.is_bad, self.overrides, good_threshold=good, bad_threshold=bad)


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
    scorer: Scorer,
    *,
    window_beats: float | None = None,
    hop_beats: float | None = None,
    tracks: TrackSelector = None,
    transpose_range: int = defaults.TRANSPOSE_RANGE,
    stretches: Sequence[float] = defaults.STRETCHES,
    good_threshold: float | None = None,
    bad_threshold: float | None = None,
    min_coverage: float | None = None,
    progress: Progress | None = None,
) -> Iterator[FileResult]:
    """Score each file whole, or window by window; an unreadable file yields an error result and the rest go on.

    Every option is validated before the first file is read, so a bad option fails fast.
    """
    check_stretches(stretches)
    check_transpose_range(transpose_range)
    for value, name in ((good_threshold, "good_threshold"), (bad_threshold, "bad_threshold")):
        if value is not None:
            check_threshold(value, name)
    if min_coverage is not None:
        check_coverage(min_coverage)
    if window_beats is not None:
        number(window_beats, "window_beats", above=0)
    if hop_beats is not None:
        if window_beats is None:
            raise ParameterError("hop_beats needs window_beats")
        number(hop_beats, "hop_beats", above=0)
    options = {
        "transpose_range": transpose_range,
        "stretches": stretches,
        "good_threshold": good_threshold,
        "bad_threshold": bad_threshold,
        "min_coverage": min_coverage,
    }
    for i, path in enumerate(paths):
        name = str(path)
        if progress and len(paths) > 1:
            progress(f"scoring {i + 1}/{len(paths)}: {Path(path).name}")
        try:
            notes = read_notes(path, tracks=tracks)
        except InputError as exc:
            yield FileResult(name, error=str(exc))
            continue
        if window_beats is None:
            yield FileResult(name, scorer.score([notes], **options)[0])
            continue
        cut = windows(notes, window_beats=window_beats, hop_beats=hop_beats)
        verdicts = scorer.score([w for _, _, w in cut], origin_beats=[s for s, _, _ in cut], **options)
        for (start, end, _), verdict in zip(cut, verdicts, strict=True):
            yield FileResult(name, verdict, start_beat=start, end_beat=end)
