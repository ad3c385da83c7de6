"""Phrase search: grow a phrase bar by bar, every candidate judged by a critic, in this process or a server.

A beam search with backtracking. Its state is a stack of levels: level i holds the partial phrases (beams)
that survived with i bars, best first. A step asks the generator (:mod:`rollmatch.generators`) for candidate
next bars of the best ``beam`` beams of the deepest level not yet expanded and scores every candidate on
the windows its bar completes, all of them in one call of the critic (:class:`~rollmatch.scoring.Critic`: a
local :class:`~rollmatch.Scorer`, or a server through ``ScoreStream`` with many requests in flight). The survivors, best
first, become the next level. When none survives, the next beams of the same level are expanded (each beam
gets up to ``draws`` fresh draws), and when a level is spent the search backtracks to the one before. It
stops at the target length, when every level is spent (:class:`SearchError` naming what was tried), or when
the evaluation or time budget runs out.

**Windows.** A piece is checked the way ``rollmatch score --window W*beats_per_bar --hop beats_per_bar``
checks it: a window of ``W`` bars starts at every bar. Appending bar i completes the window that ends with
it, which must be GOOD; before the first W bars exist that window is still short and must only not be
VETOED; the last bar also completes the shorter windows that start after it, which must be GOOD too.
Candidates rank by the lowest score among their windows.

**Same seed, same piece.** Each beam draws from a random generator seeded by (seed, the beam's serial
number, the draw), serial numbers are given in rank order, answers are put back in request order whatever
order they arrive in, and ties rank by candidate order, so the result never depends on timing, except
where the time budget stops a search.

**New music, not copies.** A candidate must first meet the continuity rules (:mod:`rollmatch.continuity`:
register, voice-leading, key, no degenerate bar), which cost no evaluation. After scoring it must copy no
exemplar (:class:`Novelty`: no window whose nearest good exemplar reaches ``max_copy``, no stretch longer than
``max_copy_beats`` that does) and overuse none (no exemplar explaining more than ``max_reuse`` of the windows).

**Regenerate.** ``regenerate=(first, last)`` grows those bars of ``start`` in place: the bars after them come
back with the last one, and every window that touches them is checked.

**Form.** ``form='AABA'`` cuts the bars into equal sections. A section whose letter came before starts as
a repeat: the earlier section's bars, exact or transposed, with the generator's bars as variations; beams
rank first by how few bars depart from what they repeat, then by score. Every window is checked all the same.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND
from .bars import parse_bar_range
from .checks import number, whole_number
from .continuity import Continuity, bar_line_leap, fault, infer_key, parse_key, parse_range
from .diversity import diversity, pairwise_similarity
from .errors import InputError, OutputError, ParameterError, SearchError
from .generators import (
    BarGenerator,
    BarOrigin,
    Context,
    Material,
    Proposal,
    load_generator,
    propose,
    select_voiced,
)
from .library import Library
from .notes import (
    NOTE_DTYPE,
    note_order,
    select_beats,
    snap_notes,
    span_beats,
    split_voices,
    transform_notes,
)
from .progress import Show, progress_bar
from .readers import COMPRESSED_MUSICXML, SUFFIXES, read_notes, suffixes_of
from .scoring import Critic, Scorer, windows
from .storage import write_output
from .verdict import Outcome, Thresholds, Verdict, reaches
from .writers import write_midi, write_musicxml

#: Transpositions (semitones) a repeat of a form section is tried at, the exact repeat first.
FORM_TRANSPOSITIONS = (0, 5, -5, 7, -7, 12, -12)
#: How the message a search gives up with names each reason a candidate was rejected for.
REJECTIONS = {
    "copy": "copies (a window matched one good exemplar at or above the copy ceiling, max_copy={max_copy:g})",
    "copied stretch": (
        "copied stretches (longer than max_copy_beats={max_copy_beats} beats at or above max_copy={max_copy:g})"
    ),
    "reuse": "overusing one exemplar (more than {limit} windows, max_reuse={max_reuse:g})",
    "degenerate": "degenerate bars (one note, one repeated note, one chord held or repeated, or a lone voice)",
    "filler": "filler (a bar inside no window's good match, let through by coverage)",
    "register": "outside the register",
    "voice-leading": "leaping too far across the bar line",
    "key": "outside the key",
    "empty": "empty bars",
    "unchanged": "unchanged (the regenerated bars as they were)",
}
#: Where a bar in a repeat departs from the bar it repeats: transposed (first bar of the section only), or new.
TRANSPOSED_DEVIATION, VARIED_DEVIATION = 1, 2


@dataclass(frozen=True)
class Section:
    """One letter of a form: bars [start, start + bars); ``first`` is where the letter's first section starts."""

    letter: str
    start: int
    bars: int
    first: int

    @property
    def repeat(self) -> bool:
        return self.first != self.start


def parse_form(form: str | None, bars: int) -> tuple[Section, ...]:
    """Sections of equal length for ``form`` (letters such as 'AABA'); one section when ``form`` is None."""
    if form is None:
        return (Section("A", 0, bars, 0),)
    letters = form.strip().upper()
    if not letters or not (letters.isascii() and letters.isalpha()):
        raise ParameterError(f"form={form!r} must be letters, one per section, such as AABA")
    if len(letters) > defaults.MAX_FORM_SECTIONS:
        raise ParameterError(
            f"form={form!r} has {len(letters)} sections; at most {defaults.MAX_FORM_SECTIONS} are allowed"
        )
    if bars % len(letters):
        raise ParameterError(
            f"bars={bars} does not split into the {len(letters)} sections of form={form!r}; give a multiple of "
            f"{len(letters)}"
        )
    size = bars // len(letters)
    first: dict[str, int] = {}
    return tuple(
        Section(letter, k * size, size, first.setdefault(letter, k * size)) for k, letter in enumerate(letters)
    )


@dataclass(frozen=True)
class Novelty:
    """What a result may copy: no window may match one good exemplar at ``max_copy`` or more (1: no
    ceiling); no stretch longer than ``max_copy_beats`` beats may (None: the window ceiling alone); no good
    exemplar may explain more than ``max_reuse`` of the result's windows."""

    max_copy: float = defaults.MAX_COPY
    max_copy_beats: float | None = defaults.MAX_COPY_BEATS
    max_reuse: float = defaults.MAX_REUSE

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once, here
        set_(self, "max_copy", number(self.max_copy, "max_copy", above=0, at_most=1))
        if self.max_copy_beats is not None:
            beats = number(self.max_copy_beats, "max_copy_beats", above=0, at_most=defaults.MAX_BEATS_PER_FRAGMENT)
            set_(self, "max_copy_beats", beats)
        set_(self, "max_reuse", number(self.max_reuse, "max_reuse", above=0, at_most=1))

    def copies(self, verdict: Verdict) -> bool:
        """Whether ``verdict``'s fragment copies its nearest good exemplar (never with the ceiling off)."""
        return (
            self.max_copy < 1
            and verdict.nearest is not None
            and bool(reaches(verdict.nearest.similarity, self.max_copy))
        )

    def to_dict(self) -> dict[str, Any]:
        return {"max_copy": self.max_copy, "max_copy_beats": self.max_copy_beats, "max_reuse": self.max_reuse}


@dataclass(frozen=True)
class SearchSettings:
    """A phrase search's settings, validated once, here: how long a piece, on which bars, judged in which
    windows, how wide a beam, how many candidates, and within which budgets.

    ``bars`` counts a start's bars (a --regenerate search takes the start's length instead). ``min_coverage``
    is the share of each window a good match must cover (None: the critic's). ``form`` ('AABA') splits the
    bars into sections that repeat.
    """

    bars: int = defaults.SEARCH_BARS
    beats_per_bar: int = defaults.BEATS_PER_BAR
    window_bars: int = defaults.WINDOW_BARS
    min_coverage: float | None = None
    beam: int = defaults.BEAM_WIDTH
    candidates: int = defaults.CANDIDATES_PER_BEAM
    draws: int = defaults.DRAWS_PER_BEAM
    seed: int = defaults.SEARCH_SEED
    form: str | None = None
    novelty: Novelty = field(default_factory=Novelty)
    max_evaluations: int = defaults.SEARCH_MAX_EVALUATIONS
    max_seconds: float = defaults.SEARCH_MAX_SECONDS

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once, here
        for name, low, high in (
            ("bars", 1, defaults.MAX_SEARCH_BARS),
            ("beats_per_bar", 1, defaults.MAX_BEATS_PER_BAR),
            ("window_bars", 1, defaults.MAX_WINDOW_BARS),
            ("beam", 1, defaults.MAX_BEAM_WIDTH),
            ("candidates", 1, defaults.MAX_CANDIDATES_PER_BEAM),
            ("draws", 1, defaults.MAX_DRAWS_PER_BEAM),
            ("seed", 0, 2**63 - 1),
            ("max_evaluations", 1, defaults.MAX_SEARCH_EVALUATIONS),
        ):
            set_(self, name, whole_number(getattr(self, name), name, at_least=low, at_most=high))
        if self.min_coverage is not None:
            set_(self, "min_coverage", number(self.min_coverage, "min_coverage", at_least=0, at_most=1))
        set_(self, "max_seconds", number(self.max_seconds, "max_seconds", above=0))
        if not isinstance(self.novelty, Novelty):
            raise ParameterError(f"novelty={self.novelty!r} must be a Novelty")
        parse_form(self.form, self.bars)

    @property
    def window_beats(self) -> int:
        """The length of the window every bar is judged in, in beats."""
        return self.window_bars * self.beats_per_bar

    def to_dict(self) -> dict[str, Any]:
        return {
            "bars": self.bars,
            "beats_per_bar": self.beats_per_bar,
            "window_bars": self.window_bars,
            "min_coverage": self.min_coverage,
            "beam": self.beam,
            "candidates": self.candidates,
            "seed": self.seed,
            "form": self.form,
            **self.novelty.to_dict(),
            "draws": self.draws,
            "max_evaluations": self.max_evaluations,
            "max_seconds": self.max_seconds,
        }


@dataclass(frozen=True)
class Beam:
    """A partial phrase that survived: every window its generated bars completed passed."""

    notes: np.ndarray  #: the piece so far, beats from its beat 0
    voices: np.ndarray  #: (n,) voice number of each note, 0 the top voice
    bars: int
    score: float  #: the lowest score among the windows its last bar completed
    deviation: int  #: how far its repeats depart from what they repeat (0 without a form)
    origins: tuple[BarOrigin, ...]
    transpose: int  #: the transposition its current repeat started at
    serial: int  #: its number in the order beams were ranked; seeds its draws
    reuse: tuple[tuple[str, int], ...] = ()  #: windows each good exemplar explains so far, by exemplar id
    covered: frozenset[int] = frozenset()  #: the bars inside some GOOD window's good match so far


@dataclass(frozen=True)
class _Candidate:
    beam: Beam
    notes: np.ndarray  #: the beam's piece with the candidate bar appended
    voices: np.ndarray
    origin: BarOrigin
    deviation: int
    transpose: int
    bar: Proposal  #: the candidate bar alone, beats from its start


@dataclass(frozen=True)
class _Span:
    """A window to check, in bars; ``strict`` windows must be GOOD, the others only not VETOED."""

    start: int
    end: int
    strict: bool


def _kinds(origin: BarOrigin) -> tuple[str, ...]:
    """What made a candidate bar, for counting acceptance: its transformations, 'as drawn' for none, or its
    source for a repeat."""
    if origin.source == "repeat":
        return ("repeat",)
    return tuple(t.partition(":")[0] for t in origin.transforms) or ("as drawn",)


def window_spans(bar: int, bars: int, window_bars: int, *, closes: bool = False) -> list[_Span]:
    """The windows that appending bar ``bar`` (from 0) of a ``bars``-bar piece completes; ``closes`` when the
    bars after it are already there (a --regenerate's kept bars), so that every window through it is complete."""
    first = max(0, bar - window_bars + 1)
    last = closes or bar == bars - 1
    spans = [_Span(first, first + window_bars, bar >= window_bars - 1 or last)]
    if last:
        spans += [_Span(s, s + window_bars, True) for s in range(first + 1, bar + 1)]
    return spans


def append_bar(
    piece: np.ndarray, voices: np.ndarray, bar: Proposal, index: int, beats_per_bar: int
) -> tuple[np.ndarray, np.ndarray]:
    """``piece`` with ``bar`` (beats from the bar's start) placed as bar ``index``, on the MIDI grid, and the
    voices of the notes alongside."""
    placed = bar.notes.copy()
    placed["start"] += index * beats_per_bar
    placed["end"] += index * beats_per_bar
    bar_voices = split_voices(bar.notes) if bar.voices is None else bar.voices
    notes = snap_notes(np.concatenate([piece, placed]), keep_order=True)
    order = note_order(notes)
    return notes[order], np.concatenate([voices, bar_voices])[order]


@dataclass
class _Level:
    """The beams of one length, best first, and how many (beam, draw) pairs have been expanded."""

    beams: list[Beam]
    tried: int = 0

    def next_group(self, width: int, draws: int) -> list[tuple[Beam, int]]:
        """The next ``width`` (beam, draw) pairs: every beam's first draw, best beam first, then the second..."""
        stop = min(len(self.beams) * draws, self.tried + width)
        group = [(self.beams[k % len(self.beams)], k // len(self.beams)) for k in range(self.tried, stop)]
        self.tried = stop
        return group


@dataclass(frozen=True)
class WindowResult:
    """The verdict on one window of the result, with match positions in the piece's beats."""

    start_bar: int
    start_beat: float
    end_beat: float
    verdict: Verdict
    longest_copy_beats: float = 0.0  #: the longest stretch inside it that copies one good exemplar

    @property
    def novelty(self) -> float:
        """1 - the similarity of its nearest good exemplar."""
        return 1.0 - (self.verdict.nearest.similarity if self.verdict.nearest else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_bar": self.start_bar,
            "start_beat": self.start_beat,
            "end_beat": self.end_beat,
            **self.verdict.to_dict(),
            "novelty": round(self.novelty, 4),
            "longest_copy_beats": self.longest_copy_beats,
        }


def copied_stretches(
    critic: Critic, notes: np.ndarray, novelty: Novelty, *, window_beats: float, thresholds: Thresholds | None
) -> list[tuple[float, float]]:
    """Every stretch (start, end beats) of ``notes``, a whole number of beats up to ``window_beats`` long and
    starting on a beat, whose nearest good exemplar matches it at ``novelty.max_copy`` or more."""
    span = math.ceil(span_beats(notes))
    stretches = [
        (float(a), float(a + length)) for length in range(1, int(window_beats) + 1) for a in range(span - length + 1)
    ]
    if not stretches:
        return []
    verdicts = critic.score([select_beats(notes, a, b) for a, b in stretches], thresholds=thresholds)
    return [stretch for stretch, v in zip(stretches, verdicts, strict=True) if novelty.copies(v)]


def longest_copy(copied: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest of the ``copied`` stretches that lies within [start, end) beats; 0 for none."""
    return max((b - a for a, b in copied if a >= start - 1e-9 and b <= end + 1e-9), default=0.0)


@dataclass(frozen=True)
class SearchResult:
    """What a search found. ``complete`` is False when a budget stopped it short of the length asked for;
    ``windows`` is every window of ``notes`` scored again at the end, as ``rollmatch score --window`` would."""

    notes: np.ndarray
    voices: np.ndarray  #: (n,) voice number of each note, 0 the top voice
    bars: int
    complete: bool
    stopped: str
    origins: tuple[BarOrigin, ...]
    sections: tuple[Section, ...]
    windows: tuple[WindowResult, ...]
    evaluations: int
    dead_ends: int  #: expansions whose candidates all failed
    backtracks: int  #: levels abandoned, going back to shorter phrases
    seconds: float
    generation_seconds: float
    scoring_seconds: float
    rejected: dict[str, int] = field(default_factory=dict)  #: candidates rejected, by reason
    proposed: int = 0  #: candidate bars the generator proposed
    scored: int = 0  #: candidates that met the continuity rules and were scored
    accepted: int = 0  #: candidates whose windows all passed: the beams
    acceptance: dict[str, dict[str, int]] = field(default_factory=dict)  #: see :meth:`PhraseSearch.acceptance`
    diversity: dict[str, Any] = field(default_factory=dict)  #: see :func:`rollmatch.diversity.diversity`
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def good_windows(self) -> int:
        return sum(w.verdict.outcome is Outcome.GOOD for w in self.windows)

    @property
    def all_good(self) -> bool:
        return self.good_windows == len(self.windows)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        matched = Counter(
            w.verdict.good.exemplar for w in self.windows if w.verdict.outcome is Outcome.GOOD and w.verdict.good
        )
        return {
            "settings": self.settings,
            "complete": self.complete,
            "stopped": self.stopped,
            "bars_found": self.bars,
            "all_windows_good": self.all_good,
            "evaluations": self.evaluations,
            "dead_ends": self.dead_ends,
            "backtracks": self.backtracks,
            "seconds": {
                "total": round(self.seconds, 3),
                "generation": round(self.generation_seconds, 3),
                "scoring": round(self.scoring_seconds, 3),
            },
            "exemplars_matched": dict(sorted(matched.items(), key=lambda item: (-item[1], item[0]))),
            "candidates": {
                "proposed": self.proposed,
                "scored": self.scored,
                "accepted": self.accepted,
                "acceptance_rate": round(self.accepted / self.scored, 4) if self.scored else 0.0,
            },
            "acceptance": self.acceptance,
            "rejected": self.rejected,
            "novelty": {
                "lowest": round(min((w.novelty for w in self.windows), default=1.0), 4),
                "longest_copy_beats": max((w.longest_copy_beats for w in self.windows), default=0.0),
            },
            "diversity": self.diversity,
            "sections": [
                {
                    "letter": s.letter,
                    "start_bar": s.start,
                    "bars": s.bars,
                    **({"repeats_bar": s.first} if s.repeat else {}),
                }
                for s in self.sections
            ],
            "bar_origins": [o.to_dict() for o in self.origins],
            "windows": [w.to_dict() for w in self.windows],
        }


class PhraseSearch:
    """The state of one search: its settings, the critic it scores through, and what it has spent.

    ``start`` is a piece to continue (beats); its length rounded up to whole bars counts toward
    ``settings.bars``. With ``regenerate=(first, last)`` (bars from 0, inclusive) the search replaces those
    bars of ``start`` instead, keeping the rest, and the piece is the start's length. ``material`` is what the
    generator may draw on. ``name`` names the generator in messages. ``rules`` say what a bar must meet to
    join the one before (default: the material's register and leaps).
    """

    def __init__(
        self,
        critic: Critic,
        generator: BarGenerator,
        *,
        material: Material,
        settings: SearchSettings | None = None,
        name: str = "generator",
        start: np.ndarray | None = None,
        regenerate: tuple[int, int] | None = None,
        rules: Continuity | None = None,
        progress: Show = False,
    ) -> None:
        self.critic = critic
        self.generator = generator
        self.material = material
        self.settings = settings = SearchSettings() if settings is None else settings
        self.name = name
        if material.beats_per_bar != settings.beats_per_bar:
            raise ParameterError(
                f"material cut into bars of {material.beats_per_bar} beats, but beats_per_bar={settings.beats_per_bar}"
            )
        self.beats_per_bar = settings.beats_per_bar
        self.novelty = settings.novelty
        #: what every window is judged against: the critic's thresholds in force at each call (None), or, with a
        #: coverage requirement of the settings' own, the critic's as they were at the start with that coverage
        self.thresholds = (
            None if settings.min_coverage is None else critic.thresholds.overridden(min_coverage=settings.min_coverage)
        )
        self.rules = material.rules if rules is None else rules
        piece = snap_notes(start) if start is not None else np.zeros(0, dtype=NOTE_DTYPE)
        piece_bars = math.ceil(span_beats(piece) / self.beats_per_bar)
        self.tail = np.zeros(0, dtype=NOTE_DTYPE)  #: the kept bars after a --regenerate, beats from their start
        if regenerate is None:
            self.bars = settings.bars
            self.start, self.start_bars, self.last_bar = piece, piece_bars, self.bars - 1
            if self.start_bars >= self.bars:
                raise ParameterError(
                    f"the start is {self.start_bars} bars long; bars={self.bars} must be more, to leave bars to search"
                )
        else:
            first, last = regenerate
            if start is None:
                raise ParameterError("regenerate needs a start: the piece whose bars to replace")
            if not (isinstance(first, int) and isinstance(last, int) and 0 <= first <= last < piece_bars):
                raise ParameterError(
                    f"regenerate=bars {first + 1}-{last + 1} must lie within the start's {piece_bars} bars, "
                    "first <= last"
                )
            if settings.form is not None:
                raise ParameterError("regenerate and form cannot be combined: a regenerated piece keeps its own form")
            self.bars = piece_bars
            self.start = select_beats(piece, 0, first * self.beats_per_bar) if first else np.zeros(0, dtype=NOTE_DTYPE)
            self._replaced = select_beats(piece, first * self.beats_per_bar, (last + 1) * self.beats_per_bar)
            self.start_bars, self.last_bar = first, last
            if last + 1 < piece_bars:
                self.tail = select_beats(piece, (last + 1) * self.beats_per_bar)
        self._tail_voices = split_voices(self.tail)
        self._tail = Proposal(self.tail, self._tail_voices)  #: the kept bars after, with their voices, found once
        self.regenerate = regenerate
        self.sections = parse_form(settings.form, self.bars)
        self.progress = progress
        #: the settings as the report gives them
        self.described: dict[str, Any] = {
            **settings.to_dict(),
            "bars": self.bars,
            "generator": name,
            "start_bars": self.start_bars,
            "regenerate": None if regenerate is None else f"{regenerate[0] + 1}-{regenerate[1] + 1}",
            "continuity": self.rules.to_dict(),
        }
        self.reuse_limit = max(1, math.floor(self.novelty.max_reuse * self.bars + defaults.TIE_TOLERANCE))
        #: each good exemplar's length from its first onset, in beats: where a copy of it ends
        self._exemplar_beats = {e: span_beats(n) - float(n["start"].min()) for e, n in material.exemplars if n.size}
        self.evaluations = 0
        self.proposed = 0
        self.expansions = 0
        self.backtracks = 0
        self.dead_ends = 0
        self.deepest = self.start_bars
        self.rejected: Counter[str] = Counter()
        self.vetoes: Counter[str] = Counter()
        self.scored = 0  #: candidates scored (those that met the continuity rules)
        self.accepted = 0  #: candidates whose windows all passed
        #: the same, by what their generator did to them ('as drawn' for nothing)
        self.scored_kinds: Counter[str] = Counter()
        self.accepted_kinds: Counter[str] = Counter()
        self.generation_seconds = 0.0
        self.scoring_seconds = 0.0
        self._serial = 0
        self._began = 0.0

    # --- the loop --------------------------------------------------------------------------------------

    def run(self) -> SearchResult:
        """Search until the target length, a budget, or giving up (:class:`SearchError`)."""
        self._began = time.perf_counter()
        with progress_bar(desc="search", total=self.bars, unit="bar", show=self.progress) as self._bar:
            return self._search()

    def _search(self) -> SearchResult:
        kept = BarOrigin("kept" if self.regenerate else "start")
        root = Beam(
            self.start,
            split_voices(self.start),
            self.start_bars,
            0.0,
            0,
            (kept,) * self.start_bars,
            0,
            self._next_serial(),
        )
        levels = [_Level([root])]
        while True:
            if time.perf_counter() - self._began > self.settings.max_seconds:
                return self._stop(levels, f"time budget of {self.settings.max_seconds:g} s")
            group = levels[-1].next_group(self.settings.beam, self.settings.draws)
            if not group:
                levels.pop()
                if not levels:
                    raise SearchError(f"the search gave up: {self._tried()}")
                self.backtracks += 1
                continue
            index = group[0][0].bars
            candidates = self._candidates(group)
            spans = window_spans(index, self.bars, self.settings.window_bars, closes=index == self.last_bar)
            stretches = self._copy_stretches(index)
            requests = [
                [select_beats(c.notes, s.start * self.beats_per_bar, s.end * self.beats_per_bar) for s in spans]
                + [select_beats(c.notes, a, b) for a, b in stretches]
                for c in candidates
            ]
            if self.evaluations + sum(len(r) for r in requests) > self.settings.max_evaluations:
                return self._stop(levels, f"evaluation budget of {self.settings.max_evaluations}")
            survivors = self._survivors(candidates, spans, stretches, self._score(requests)) if candidates else []
            self._show(survivors[0].bars if survivors else index)
            self.dead_ends += not survivors
            if survivors and index == self.last_bar:
                return self._result(survivors[0], complete=True, stopped="length reached")
            if survivors:
                levels.append(_Level(survivors))
                self.deepest = max(self.deepest, survivors[0].bars)

    def _copies(self, origin: float, verdict: Verdict) -> bool:
        """Whether a fragment starting at beat ``origin`` of the piece copies its nearest good exemplar in bars
        the search made: a copy that lies wholly within the given start or kept bars is the user's own."""
        if not self.novelty.copies(verdict) or verdict.nearest is None:
            return False
        nearest = verdict.nearest
        first = origin + nearest.shift_beats
        last = first + self._exemplar_beats.get(nearest.exemplar, math.inf) * nearest.stretch
        kept_before = self.start_bars * self.beats_per_bar
        kept_after = (self.last_bar + 1) * self.beats_per_bar if self.tail.size else math.inf
        return not (max(first, origin) >= kept_after - 1e-9 or last <= kept_before + 1e-9)

    def _copy_stretches(self, index: int) -> list[tuple[float, float]]:
        """With max_copy_beats B: every stretch (beats) longer than B, up to a window, starting on a beat and
        ending on a beat inside bar ``index`` (and, for the last bar of a --regenerate, inside the kept bars a
        window after it); none of them may copy an exemplar. All lengths are scored, because similarity is
        not monotone in length: a stretch can copy where the shorter ones inside it don't."""
        if self.novelty.max_copy_beats is None or self.novelty.max_copy >= 1:
            return []
        shortest = math.floor(self.novelty.max_copy_beats) + 1
        longest = self.settings.window_beats
        last = index + 1 if index < self.last_bar else min(self.bars, index + self.settings.window_bars)
        ends = range(index * self.beats_per_bar + 1, last * self.beats_per_bar + 1)
        return [
            (float(end - length), float(end))
            for end in ends
            for length in range(shortest, longest + 1)
            if end - length >= 0 and end - length < (index + 1) * self.beats_per_bar
        ]

    def _candidates(self, group: list[tuple[Beam, int]]) -> list[_Candidate]:
        """Every candidate of the group that meets the continuity rules, in a fixed order, without two alike."""
        out: list[_Candidate] = []
        seen: set[bytes] = set()
        for beam, draw in group:
            previous = beam.bars - 1
            before = (
                select_voiced(beam.notes, beam.voices, previous * self.beats_per_bar, beam.bars * self.beats_per_bar)
                if beam.bars
                else None
            )
            for candidate in self._expand(beam, draw):
                bar = candidate.bar.notes
                voices = split_voices(bar) if candidate.bar.voices is None else candidate.bar.voices
                reason = fault(
                    bar,
                    voices,
                    self.rules,
                    previous=before[0] if before else None,
                    previous_voices=before[1] if before else None,
                )
                if reason is None and self.regenerate is not None and beam.bars == self.last_bar:
                    first = self.start_bars * self.beats_per_bar
                    region = select_beats(candidate.notes, first, (self.last_bar + 1) * self.beats_per_bar)
                    if region.tobytes() == self._replaced.tobytes():
                        reason = "unchanged: the regenerated bars are the bars they replace"
                if reason is None and beam.bars == self.last_bar and self.tail.size:
                    after = select_voiced(self.tail, self._tail_voices, 0, self.beats_per_bar)
                    if after[0].size and (leap := bar_line_leap(bar, voices, *after)) > self.rules.max_leap:
                        reason = f"voice-leading: a voice leaps {leap} semitones into the kept bar after it"
                if reason is not None:
                    self.rejected[reason.partition(":")[0]] += 1
                    continue
                key = candidate.notes.tobytes()
                if key not in seen:
                    seen.add(key)
                    out.append(candidate)
        self.expansions += len(group)
        return out

    def _expand(self, beam: Beam, draw: int) -> list[_Candidate]:
        """Candidates for the bar after ``beam``: in a repeat (first draw only) the bar it repeats, then the
        generator's. The last bar of a --regenerate brings the kept bars after it along."""
        index = beam.bars
        section = next(s for s in self.sections if s.start <= index < s.start + s.bars)
        offset = index - section.start
        reference = None
        bars: list[tuple[Proposal, BarOrigin, int, int]] = []
        if section.repeat:
            repeated = section.first + offset
            reference, reference_voices = select_voiced(
                beam.notes, beam.voices, repeated * self.beats_per_bar, (repeated + 1) * self.beats_per_bar
            )
            shifts = FORM_TRANSPOSITIONS if offset == 0 else (beam.transpose,)
            for t in shifts if draw == 0 and reference.size else ():
                try:
                    moved = transform_notes(reference, transpose=t)
                except InputError:
                    continue  # the repeat would leave MIDI's pitch range
                bars.append(
                    (
                        Proposal(moved, reference_voices),
                        BarOrigin("repeat", repeated, t),
                        TRANSPOSED_DEVIATION if t and offset == 0 else 0,
                        t,
                    )
                )
        context = Context(
            beam.notes,
            index,
            self.bars,
            self.beats_per_bar,
            self.settings.candidates,
            self.material,
            reference,
            beam.voices,
            beam.origins,
            self.rules,
        )
        began = time.perf_counter()
        proposed = propose(
            self.generator, self.name, context, np.random.default_rng([self.settings.seed, beam.serial, draw])
        )
        self.generation_seconds += time.perf_counter() - began
        self.proposed += len(proposed)
        kind, of_bar = ("variation", section.first + offset) if section.repeat else ("generated", None)
        deviation = VARIED_DEVIATION if section.repeat else 0
        transpose = beam.transpose if section.repeat and offset else 0
        bars += [(p, BarOrigin(kind, of_bar, 0, p.sources, p.transforms), deviation, transpose) for p in proposed]
        out = []
        for bar, origin, dev, t in bars:
            notes, voices = append_bar(beam.notes, beam.voices, bar, index, self.beats_per_bar)
            if index == self.last_bar and self.tail.size:
                notes, voices = append_bar(notes, voices, self._tail, index + 1, self.beats_per_bar)
            out.append(_Candidate(beam, notes, voices, origin, dev, t, bar))
        return out

    def _score(self, requests: list[list[np.ndarray]]) -> list[list[Verdict]]:
        """Verdicts for every request, in request order whatever order the stream answers in."""
        began = time.perf_counter()
        answers = self.critic.score_batches(requests, thresholds=self.thresholds)
        self.scoring_seconds += time.perf_counter() - began
        self.evaluations += sum(len(r) for r in requests)
        return answers

    def _survivors(
        self,
        candidates: list[_Candidate],
        spans: list[_Span],
        stretches: list[tuple[float, float]],
        verdicts: list[list[Verdict]],
    ) -> list[Beam]:
        """The candidates whose windows all pass, copy no exemplar and overuse none, as beams ranked by
        (deviation, score, candidate order)."""
        ranked = []
        for order, (candidate, answer) in enumerate(zip(candidates, verdicts, strict=True)):
            self.scored += 1
            self.scored_kinds.update(_kinds(candidate.origin))
            windows, copied = answer[: len(spans)], answer[len(spans) :]
            failed = next(
                (
                    v
                    for s, v in zip(spans, windows, strict=True)
                    if v.outcome is Outcome.VETOED or (s.strict and v.outcome is not Outcome.GOOD)
                ),
                None,
            )
            if failed is not None:
                self.rejected[failed.outcome.value] += 1
                if failed.outcome is Outcome.VETOED and failed.bad is not None:
                    self.vetoes[failed.bad.exemplar] += 1
                continue
            if any(self._copies(s.start * self.beats_per_bar, v) for s, v in zip(spans, windows, strict=True)):
                self.rejected["copy"] += 1
                continue
            if any(self._copies(a, v) for (a, _), v in zip(stretches, copied, strict=True)):
                self.rejected["copied stretch"] += 1
                continue
            reuse = Counter(dict(candidate.beam.reuse))
            reuse.update(
                v.good.exemplar for s, v in zip(spans, windows, strict=True) if s.strict and v.good is not None
            )
            if reuse and max(reuse.values()) > self.reuse_limit:
                self.rejected["reuse"] += 1
                continue
            covered = candidate.beam.covered.union(
                *(self._placed(s.start, v) for s, v in zip(spans, windows, strict=True))
            )
            if any(b not in covered for b in self._settled(candidate.beam.bars)):
                self.rejected["filler"] += 1
                continue
            score = min(v.score for v in windows)
            self.accepted += 1
            self.accepted_kinds.update(_kinds(candidate.origin))
            ranked.append(
                (
                    candidate.beam.deviation + candidate.deviation,
                    -round(score, defaults.SCORE_DECIMALS),
                    order,
                    score,
                    candidate,
                    tuple(sorted(reuse.items())),
                    frozenset(covered),
                )
            )
        ranked.sort(key=lambda r: r[:3])
        return [
            Beam(
                c.notes,
                c.voices,
                c.beam.bars + 1 if c.beam.bars < self.last_bar else self.bars,
                score,
                deviation,
                c.beam.origins
                + (c.origin,)
                + (BarOrigin("kept"),) * (self.bars - self.last_bar - 1 if c.beam.bars == self.last_bar else 0),
                c.transpose,
                self._next_serial(),
                reuse,
                covered,
            )
            for deviation, _, _, score, c, reuse, covered in ranked
        ]

    def _placed(self, start_bar: int, verdict: Verdict) -> frozenset[int]:
        """The bars (from 0) that a GOOD window starting at ``start_bar`` has inside its good match: at least
        half of each lies where the exemplar, transposed, shifted and stretched, sounds. An exemplar the
        material does not hold (another server's) counts as covering the whole window."""
        if verdict.outcome is not Outcome.GOOD or verdict.good is None:
            return frozenset()
        bpb = self.beats_per_bar
        length = self._exemplar_beats.get(verdict.good.exemplar)
        if length is None:
            return frozenset(range(start_bar, min(start_bar + self.settings.window_bars, self.bars)))
        first = start_bar * bpb + verdict.good.shift_beats
        last = first + length * verdict.good.stretch
        return frozenset(
            b
            for b in range(max(0, math.floor(first / bpb)), math.ceil(last / bpb))
            if min(last, (b + 1) * bpb) - max(first, b * bpb) >= bpb / 2 - 1e-9
        )

    def _settled(self, index: int) -> range:
        """The generated bars whose every window is judged once bar ``index`` is appended: each must lie
        inside the good match of one of them, so that no bar is filler a window's coverage let through."""
        last = self.last_bar if index == self.last_bar else index - self.settings.window_bars + 1
        return range(self.start_bars, min(last, self.last_bar) + 1)

    def acceptance(self) -> dict[str, dict[str, int]]:
        """Candidates scored and accepted, by what their generator did to them."""
        return {
            kind: {"scored": count, "accepted": self.accepted_kinds[kind]}
            for kind, count in sorted(self.scored_kinds.items())
        }

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial - 1

    # --- endings ---------------------------------------------------------------------------------------

    def _stop(self, levels: list[_Level], budget: str) -> SearchResult:
        """A budget ran out: the best beam of the deepest level, or SearchError when no bar survived yet."""
        if len(levels) == 1:
            raise SearchError(f"the {budget} ran out before any bar survived: {self._tried()}")
        return self._result(levels[-1].beams[0], complete=False, stopped=budget)

    def _result(self, beam: Beam, *, complete: bool, stopped: str) -> SearchResult:
        """Score every window of the result again, in one call, with positions in the piece's beats, and
        measure its novelty."""
        cut = windows(beam.notes, window_beats=self.settings.window_beats, hop_beats=self.beats_per_bar)
        verdicts = self.critic.score(
            [w for _, _, w in cut], origin_beats=[s for s, _, _ in cut], thresholds=self.thresholds
        )
        copied = copied_stretches(
            self.critic,
            beam.notes,
            self.novelty,
            window_beats=self.settings.window_beats,
            thresholds=self.thresholds,
        )
        self._show(beam.bars)
        return SearchResult(
            notes=beam.notes,
            voices=beam.voices,
            bars=beam.bars,
            complete=complete,
            stopped=stopped,
            origins=beam.origins,
            sections=self.sections,
            windows=tuple(
                WindowResult(round(s / self.beats_per_bar), s, e, v, longest_copy(copied, s, e))
                for (s, e, _), v in zip(cut, verdicts, strict=True)
            ),
            evaluations=self.evaluations,
            dead_ends=self.dead_ends,
            backtracks=self.backtracks,
            seconds=time.perf_counter() - self._began,
            generation_seconds=self.generation_seconds,
            scoring_seconds=self.scoring_seconds,
            rejected=dict(sorted(self.rejected.items())),
            proposed=self.proposed,
            scored=self.scored,
            accepted=self.accepted,
            acceptance=self.acceptance(),
            diversity=diversity(
                beam.notes,
                [v.good.exemplar if v.outcome is Outcome.GOOD and v.good else None for v in verdicts],
                [notes for _, notes in self.material.exemplars],
            ),
            settings=self.described,
        )

    def _tried(self) -> str:
        """What the search tried, for the message it gives up with."""
        if not self.proposed:
            return f"generator {self.name!r} proposed no candidate bars in {self.expansions} requests"
        names = {key: text.format(**self.novelty.to_dict(), limit=self.reuse_limit) for key, text in REJECTIONS.items()}
        reasons = ", ".join(f"{count} {names.get(outcome, outcome)}" for outcome, count in self.rejected.most_common())
        vetoes = ", ".join(f"{exemplar} ({count})" for exemplar, count in self.vetoes.most_common(3))
        return (
            f"no candidate survived; generator {self.name!r} was asked {self.expansions} times for up to "
            f"{self.settings.candidates} bars and proposed {self.proposed}; {self.evaluations} windows scored, "
            f"{self.dead_ends} dead ends, {self.backtracks} backtracks; "
            f"the longest phrase reached {self.deepest} of {self.bars} bars; rejected: {reasons or 'none'}"
            + (f"; vetoed most often by {vetoes}" if vetoes else "")
        )

    def _show(self, bars: int) -> None:
        """The progress bar at ``bars``, the deepest partial phrase just reached (it goes back on backtracking)."""
        self._bar.n = bars
        self._bar.set_postfix(evaluations=self.evaluations, dead_ends=self.dead_ends, backtracks=self.backtracks)


# --- the command's one call ------------------------------------------------------------------------------


def report_path(output: str | os.PathLike[str]) -> Path:
    """Where the JSON report of a search written to ``output`` goes: beside it, ending in .json."""
    return Path(output).with_suffix(".json")


#: The outputs a search writes, by suffix: MIDI, or MusicXML (uncompressed) with the MIDI file beside it.
MIDI_SUFFIXES = suffixes_of("midi")
MUSICXML_SUFFIXES = tuple(suffix for suffix in suffixes_of("musicxml") if suffix != COMPRESSED_MUSICXML)


def check_output(output: str | os.PathLike[str]) -> Path:
    """The path to write, checked before a search spends any time."""
    path = Path(output)
    written = MIDI_SUFFIXES + MUSICXML_SUFFIXES
    if path.suffix.lower() not in written:
        raise ParameterError(f"output={str(output)!r} must end in {', '.join(written[:-1])} or {written[-1]}")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: no such directory for the output")
    return path


def result_paths(output: Path, count: int) -> list[Path]:
    """Where results 1..count go: ``output`` itself, then OUT-2, OUT-3, ... beside it."""
    return [output] + [output.with_name(f"{output.stem}-{k}{output.suffix}") for k in range(2, count + 1)]


def parse_bars(text: str) -> tuple[int, int]:
    """'5-6' or '5' (bar numbers from 1, inclusive) as (first, last) bar indices from 0."""
    try:
        lo, hi = parse_bar_range(text)
    except ParameterError:
        raise ParameterError(f"regenerate={text!r} must be bar numbers from 1, such as 5-6 or 5") from None
    if not 1 <= lo <= hi:
        raise ParameterError(f"regenerate={text!r} must name bars from 1, the first no later than the last")
    return lo - 1, hi - 1


def run_search(
    output: str | os.PathLike[str],
    settings: SearchSettings | None = None,
    *,
    server: str | None = None,
    tls_ca: str | None = None,
    library: str | os.PathLike[str] | None = None,
    generator: str = defaults.GENERATOR,
    start: str | os.PathLike[str] | None = None,
    regenerate: str | None = None,
    key: str | None = None,
    register: str | None = None,
    results: int = defaults.SEARCH_RESULTS,
    tempo_bpm: float = defaults.MIDI_TEMPO_BPM,
    backend: str = DEFAULT_BACKEND,
    progress: Show = False,
) -> list[SearchResult]:
    """Search with ``settings`` for ``results`` distinct results and write each as MIDI (and MusicXML, when
    ``output`` ends in .musicxml or .xml) with its JSON report beside it.

    Scores through the server at ``server`` (``host:port``), or else in this process with ``library`` on
    ``backend``. The generator draws on ``library``'s good exemplars either way
    (default: the shipped library). ``regenerate`` ('5-6') replaces those bars of ``start``. ``key`` ('G
    major') is kept by every bar; with a ``start`` and no ``key``, the start's key is. ``register`` ('C2-A5')
    replaces the library's. Result k > 1 runs with seed + k - 1 (and on, past results that copy an earlier
    one at the copy ceiling or more).
    """
    settings = SearchSettings() if settings is None else settings
    beats_per_bar, novelty = settings.beats_per_bar, settings.novelty
    path = check_output(output)
    results = whole_number(results, "results", at_least=1, at_most=defaults.MAX_SEARCH_RESULTS)
    number(tempo_bpm, "tempo_bpm", at_least=defaults.MIN_TEMPO_BPM, at_most=defaults.MAX_TEMPO_BPM)
    span = parse_bars(regenerate) if regenerate is not None else None
    bar_generator = load_generator(generator)
    material_library = Library.open(library)
    material = Material.from_library(material_library, beats_per_bar=beats_per_bar)
    start_notes = read_notes(start) if start is not None else None
    if span is not None and start_notes is None:
        raise ParameterError("regenerate needs --start: the piece whose bars to replace")
    rules = material.rules
    if register is not None:
        low, high = parse_range(register)
        rules = replace(rules, low=low, high=high)
    chosen_key = parse_key(key) if key is not None else infer_key(start_notes) if start_notes is not None else None
    rules = replace(rules, key=chosen_key)
    # result k is searched with seed + k and on: every one of them must be a valid seed
    whole_number(settings.seed, "seed", at_least=0, at_most=2**63 - 1 - results * defaults.RESULT_ATTEMPTS)
    paths = result_paths(path, results)

    def compared(result: SearchResult) -> np.ndarray:
        """What two results are compared on: the bars the search made (all of them, but for a --regenerate)."""
        return (
            result.notes
            if span is None
            else select_beats(result.notes, span[0] * beats_per_bar, (span[1] + 1) * beats_per_bar)
        )

    def write(found: list[SearchResult], similarity: np.ndarray, critic: Critic) -> None:
        """Every result found so far, each with its report (``similarity``: theirs to each other); written as
        each is found, so none is lost."""
        for k, (result, target_path) in enumerate(zip(found, paths, strict=False)):
            midi_path = (
                target_path.with_suffix(SUFFIXES["midi"])
                if target_path.suffix.lower() in MUSICXML_SUFFIXES
                else target_path
            )
            if k == len(found) - 1:
                write_midi(midi_path, result.notes, beats_per_bar=beats_per_bar, tempo_bpm=tempo_bpm)
                if midi_path != target_path:
                    write_musicxml(
                        target_path,
                        result.notes,
                        voices=result.voices,
                        beats_per_bar=beats_per_bar,
                        tempo_bpm=tempo_bpm,
                        key=None if chosen_key is None else chosen_key.name,
                    )
            report = {
                "output": str(target_path),
                "midi": str(midi_path),
                "server": server or "local",
                "library": {
                    "name": critic.library_name,
                    "version": critic.library_version,
                    "min_coverage": critic.thresholds.min_coverage,
                },
                "material": str(material_library.path),
                "start": None if start is None else str(start),
                "key": None if chosen_key is None else chosen_key.name,
                "tempo_bpm": tempo_bpm,
                **result.to_dict(),
                "others": {
                    str(p): round(float(similarity[k, j]), 4) for j, p in enumerate(paths[: len(found)]) if j != k
                },
            }
            write_output(report_path(target_path), (json.dumps(report, indent=2) + "\n").encode())

    found: list[SearchResult] = []
    with contextlib.ExitStack() as stack:
        critic: Critic
        if server is None:
            critic = Scorer(material_library, backend=backend)
        else:
            from .client import Client, RemoteScorer  # noqa: PLC0415  (imports grpc)

            critic = RemoteScorer(stack.enter_context(Client(server, tls_ca=tls_ca)))
        attempts = 0
        while len(found) < results:
            if attempts >= results * defaults.RESULT_ATTEMPTS:
                raise SearchError(
                    f"found {len(found)} distinct results of the {results} asked for in {attempts} searches; "
                    f"the others matched an earlier result at max_copy={novelty.max_copy:g} or more"
                )
            result = PhraseSearch(
                critic,
                bar_generator,
                material=material,
                settings=replace(settings, seed=settings.seed + attempts),
                name=generator,
                start=start_notes,
                regenerate=span,
                rules=rules,
                progress=progress,
            ).run()
            attempts += 1
            similarity = pairwise_similarity([compared(r) for r in found] + [compared(result)])
            # a result as near an earlier one as the copy ceiling (with the ceiling off: identical) is no new result
            if found and bool(reaches(similarity[-1, :-1].max(), novelty.max_copy)):
                continue
            found.append(result)
            write(found, similarity, critic)
    return found
