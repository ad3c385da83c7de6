"""Phrase search: grow a phrase bar by bar, scoring every candidate through the gRPC service.

A beam search with backtracking. Its state is a stack of levels: level i holds the partial phrases (beams)
that survived with i bars, best first. A step asks the generator (:mod:`rollmatch.generators`) for candidate
next bars of the best ``beam`` beams of the deepest level not yet expanded and scores every candidate
through ``ScoreStream``, many requests in flight, on the windows its bar completes. The survivors, best
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .checks import number, whole_number
from .client import Client
from .errors import InputError, OutputError, ParameterError, SearchError
from .generators import BarGenerator, Context, Material, load_generator, propose
from .library import Library
from .notes import NOTE_DTYPE, select_beats, snap_notes, span_beats, transform_notes
from .readers import read_notes
from .scoring import Progress, windows
from .storage import write_output
from .verdict import Outcome, Verdict, check_coverage
from .writers import write_midi

#: Scores are ranked rounded to this many decimals, so that float noise of the engine can never reorder
#: candidates that tie in exact arithmetic.
SCORE_DECIMALS = 6
#: Transpositions (semitones) a repeat of a form section is tried at, the exact repeat first.
FORM_TRANSPOSITIONS = (0, 5, -5, 7, -7, 12, -12)
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
        raise ParameterError(f"form={form!r} has {len(letters)} sections; at most {defaults.MAX_FORM_SECTIONS} are allowed")
    if bars % len(letters):
        raise ParameterError(f"bars={bars} does not split into the {len(letters)} sections of form={form!r}; give a multiple of {len(letters)}")
    size = bars // len(letters)
    first: dict[str, int] = {}
    return tuple(Section(letter, k * size, size, first.setdefault(letter, k * size)) for k, letter in enumerate(letters))


@dataclass(frozen=True)
class BarOrigin:
    """Where a bar of the result came from."""

    source: str  #: 'start' (the given start), 'generated', 'repeat' (of an earlier bar) or 'variation' (a new bar in a repeat)
    of_bar: int | None = None  #: the bar repeated, for 'repeat' and 'variation'
    transpose: int = 0  #: semitones, for 'repeat'

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.of_bar is not None:
            out["of_bar"] = self.of_bar
        if self.source == "repeat":
            out["transpose"] = self.transpose
        return out


@dataclass(frozen=True)
class Beam:
    """A partial phrase that survived: every window its generated bars completed passed."""

    notes: np.ndarray  #: the piece so far, beats from its beat 0
    bars: int
    score: float  #: the lowest score among the windows its last bar completed
    deviation: int  #: how far its repeats depart from what they repeat (0 without a form)
    origins: tuple[BarOrigin, ...]
    transpose: int  #: the transposition its current repeat started at
    serial: int  #: its number in the order beams were ranked; seeds its draws


@dataclass(frozen=True)
class _Candidate:
    beam: Beam
    notes: np.ndarray  #: the beam's piece with the candidate bar appended
    origin: BarOrigin
    deviation: int
    transpose: int


@dataclass(frozen=True)
class _Span:
    """A window to check, in bars; ``strict`` windows must be GOOD, the others only not VETOED."""

    start: int
    end: int
    strict: bool


def window_spans(bar: int, bars: int, window_bars: int) -> list[_Span]:
    """The windows that appending bar ``bar`` (from 0) of a ``bars``-bar piece completes."""
    first = max(0, bar - window_bars + 1)
    last = bar == bars - 1
    spans = [_Span(first, first + window_bars, bar >= window_bars - 1 or last)]
    if last:
        spans += [_Span(s, s + window_bars, True) for s in range(first + 1, bar + 1)]
    return spans


def append_bar(piece: np.ndarray, bar_notes: np.ndarray, index: int, beats_per_bar: int) -> np.ndarray:
    """``piece`` with ``bar_notes`` (beats from the bar's start) placed as bar ``index``, on the MIDI grid."""
    placed = bar_notes.copy()
    placed["start"] += index * beats_per_bar
    placed["end"] += index * beats_per_bar
    return snap_notes(np.concatenate([piece, placed]))


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

    def to_dict(self) -> dict[str, Any]:
        return {"start_bar": self.start_bar, "start_beat": self.start_beat, "end_beat": self.end_beat, **self.verdict.to_dict()}


@dataclass(frozen=True)
class SearchResult:
    """What a search found. ``complete`` is False when a budget stopped it short of the length asked for;
    ``windows`` is every window of ``notes`` scored again at the end, as ``rollmatch score --window`` would."""

    notes: np.ndarray
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
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def good_windows(self) -> int:
        return sum(w.verdict.verdict is Outcome.GOOD for w in self.windows)

    @property
    def all_good(self) -> bool:
        return self.good_windows == len(self.windows)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        matched = Counter(w.verdict.good.exemplar for w in self.windows if w.verdict.verdict is Outcome.GOOD and w.verdict.good)
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
            "sections": [
                {"letter": s.letter, "start_bar": s.start, "bars": s.bars, **({"repeats_bar": s.first} if s.repeat else {})}
                for s in self.sections
            ],
            "bar_origins": [o.to_dict() for o in self.origins],
            "windows": [w.to_dict() for w in self.windows],
        }


class PhraseSearch:
    """The state of one search: its settings, the client it scores through, and what it has spent.

    ``start`` is a piece to continue (beats); its length rounded up to whole bars counts toward ``bars``.
    ``material`` is what the generator may draw on. ``name`` names the generator in messages.
    ``min_coverage`` is the share of each window a good match must cover (None: the served library's).
    """

    def __init__(
        self,
        client: Client,
        generator: BarGenerator,
        *,
        material: Material,
        name: str = "generator",
        bars: int = defaults.SEARCH_BARS,
        window_bars: int = defaults.WINDOW_BARS,
        min_coverage: float | None = None,
        beats_per_bar: int = defaults.BEATS_PER_BAR,
        beam: int = defaults.BEAM_WIDTH,
        candidates: int = defaults.CANDIDATES_PER_BEAM,
        seed: int = defaults.SEARCH_SEED,
        form: str | None = None,
        start: np.ndarray | None = None,
        draws: int = defaults.DRAWS_PER_BEAM,
        max_evaluations: int = defaults.SEARCH_MAX_EVALUATIONS,
        max_seconds: float = defaults.SEARCH_MAX_SECONDS,
        in_flight: int = defaults.SEARCH_IN_FLIGHT,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.generator = generator
        self.material = material
        self.name = name
        self.bars = whole_number(bars, "bars", at_least=1, at_most=defaults.MAX_SEARCH_BARS)
        self.window_bars = whole_number(window_bars, "window_bars", at_least=1, at_most=defaults.MAX_WINDOW_BARS)
        self.min_coverage = None if min_coverage is None else check_coverage(min_coverage)
        self.beats_per_bar = whole_number(beats_per_bar, "beats_per_bar", at_least=1, at_most=defaults.MAX_BEATS_PER_BAR)
        if material.beats_per_bar != self.beats_per_bar:
            raise ParameterError(f"material cut into bars of {material.beats_per_bar} beats, but beats_per_bar={beats_per_bar}")
        self.beam = whole_number(beam, "beam", at_least=1, at_most=defaults.MAX_BEAM_WIDTH)
        self.candidates = whole_number(candidates, "candidates", at_least=1, at_most=defaults.MAX_CANDIDATES_PER_BEAM)
        self.seed = whole_number(seed, "seed", at_least=0, at_most=2**63 - 1)
        self.draws = whole_number(draws, "draws", at_least=1, at_most=defaults.MAX_DRAWS_PER_BEAM)
        self.max_evaluations = whole_number(max_evaluations, "max_evaluations", at_least=1, at_most=defaults.MAX_SEARCH_EVALUATIONS)
        self.max_seconds = number(max_seconds, "max_seconds", above=0)
        self.in_flight = whole_number(in_flight, "in_flight", at_least=1, at_most=defaults.MAX_IN_FLIGHT_PER_STREAM)
        self.sections = parse_form(form, self.bars)
        self.start = snap_notes(start) if start is not None else np.zeros(0, dtype=NOTE_DTYPE)
        self.start_bars = math.ceil(span_beats(self.start) / self.beats_per_bar)
        if self.start_bars >= self.bars:
            raise ParameterError(f"the start is {self.start_bars} bars long; bars={self.bars} must be more, to leave bars to search")
        self.progress = progress
        self.settings: dict[str, Any] = {
            "bars": self.bars, "beats_per_bar": self.beats_per_bar, "window_bars": self.window_bars,
            "min_coverage": self.min_coverage, "beam": self.beam,
            "candidates": self.candidates, "seed": self.seed, "generator": name, "form": form, "start_bars": self.start_bars,
            "draws": self.draws, "max_evaluations": self.max_evaluations, "max_seconds": self.max_seconds,
        }
        self.evaluations = 0
        self.proposed = 0
        self.expansions = 0
        self.backtracks = 0
        self.dead_ends = 0
        self.deepest = self.start_bars
        self.rejected: Counter[str] = Counter()
        self.vetoes: Counter[str] = Counter()
        self.generation_seconds = 0.0
        self.scoring_seconds = 0.0
        self._serial = 0
        self._began = 0.0

    # --- the loop --------------------------------------------------------------------------------------

    def run(self) -> SearchResult:
        """Search until the target length, a budget, or giving up (:class:`SearchError`)."""
        self._began = time.perf_counter()
        root = Beam(self.start, self.start_bars, 0.0, 0, (BarOrigin("start"),) * self.start_bars, 0, self._next_serial())
        levels = [_Level([root])]
        while True:
            if time.perf_counter() - self._began > self.max_seconds:
                return self._stop(levels, f"time budget of {self.max_seconds:g} s")
            group = levels[-1].next_group(self.beam, self.draws)
            if not group:
                levels.pop()
                if not levels:
                    raise SearchError(f"the search gave up: {self._tried()}")
                self.backtracks += 1
                continue
            candidates = self._candidates(group)
            spans = window_spans(group[0][0].bars, self.bars, self.window_bars)
            requests = [[select_beats(c.notes, s.start * self.beats_per_bar, s.end * self.beats_per_bar) for s in spans] for c in candidates]
            if self.evaluations + len(candidates) * len(spans) > self.max_evaluations:
                return self._stop(levels, f"evaluation budget of {self.max_evaluations}")
            survivors = self._survivors(candidates, spans, self._score(requests)) if candidates else []
            self._show(survivors[0].bars if survivors else group[0][0].bars)
            self.dead_ends += not survivors
            if survivors and survivors[0].bars == self.bars:
                return self._result(survivors[0], complete=True, stopped="length reached")
            if survivors:
                levels.append(_Level(survivors))
                self.deepest = max(self.deepest, survivors[0].bars)

    def _candidates(self, group: list[tuple[Beam, int]]) -> list[_Candidate]:
        """Every candidate of the group, in a fixed order, without two alike."""
        out: list[_Candidate] = []
        seen: set[bytes] = set()
        for beam, draw in group:
            for candidate in self._expand(beam, draw):
                key = candidate.notes.tobytes()
                if key not in seen:
                    seen.add(key)
                    out.append(candidate)
        self.expansions += len(group)
        return out

    def _expand(self, beam: Beam, draw: int) -> list[_Candidate]:
        """Candidates for the bar after ``beam``: in a repeat (first draw only) the bar it repeats, then the
        generator's."""
        index = beam.bars
        section = next(s for s in self.sections if s.start <= index < s.start + s.bars)
        offset = index - section.start
        reference = None
        out = []
        if section.repeat:
            repeated = section.first + offset
            reference = select_beats(beam.notes, repeated * self.beats_per_bar, (repeated + 1) * self.beats_per_bar)
            shifts = FORM_TRANSPOSITIONS if offset == 0 else (beam.transpose,)
            for t in shifts if draw == 0 and reference.size else ():
                try:
                    bar = transform_notes(reference, transpose=t)
                except InputError:
                    continue  # the repeat would leave MIDI's pitch range
                out.append(_Candidate(beam, append_bar(beam.notes, bar, index, self.beats_per_bar), BarOrigin("repeat", repeated, t),
                                      TRANSPOSED_DEVIATION if t and offset == 0 else 0, t))
        context = Context(beam.notes, index, self.bars, self.beats_per_bar, self.candidates, self.material, reference)
        began = time.perf_counter()
        proposed = propose(self.generator, self.name, context, np.random.default_rng([self.seed, beam.serial, draw]))
        self.generation_seconds += time.perf_counter() - began
        self.proposed += len(proposed)
        origin = BarOrigin("variation", section.first + offset) if section.repeat else BarOrigin("generated")
        deviation = VARIED_DEVIATION if section.repeat else 0
        transpose = beam.transpose if section.repeat and offset else 0
        out += [_Candidate(beam, append_bar(beam.notes, bar, index, self.beats_per_bar), origin, deviation, transpose) for bar in proposed]
        return out

    def _score(self, requests: list[list[np.ndarray]]) -> list[list[Verdict]]:
        """Verdicts for every request, in request order whatever order the stream answers in."""
        began = time.perf_counter()
        answers: list[list[Verdict]] = [[] for _ in requests]
        for answer in self.client.score_stream(requests, max_in_flight=self.in_flight, min_coverage=self.min_coverage):
            if answer.error is not None:
                raise answer.error
            answers[int(answer.id)] = answer.verdicts
        self.scoring_seconds += time.perf_counter() - began
        self.evaluations += sum(len(r) for r in requests)
        return answers

    def _survivors(self, candidates: list[_Candidate], spans: list[_Span], verdicts: list[list[Verdict]]) -> list[Beam]:
        """The candidates whose windows all pass, as beams ranked by (deviation, score, candidate order)."""
        ranked = []
        for order, (candidate, answer) in enumerate(zip(candidates, verdicts, strict=True)):
            failed = next((v for s, v in zip(spans, answer, strict=True)
                           if v.verdict is Outcome.VETOED or (s.strict and v.verdict is not Outcome.GOOD)), None)
            if failed is not None:
                self.rejected[failed.verdict.value] += 1
                if failed.verdict is Outcome.VETOED and failed.bad is not None:
                    self.vetoes[failed.bad.exemplar] += 1
                continue
            score = min(v.score for v in answer)
            ranked.append((candidate.beam.deviation + candidate.deviation, -round(score, SCORE_DECIMALS), order, score, candidate))
        ranked.sort(key=lambda r: r[:3])
        return [
            Beam(c.notes, c.beam.bars + 1, score, deviation, c.beam.origins + (c.origin,), c.transpose, self._next_serial())
            for deviation, _, _, score, c in ranked
        ]

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
        """Score every window of the result again, in one call, with positions in the piece's beats."""
        cut = windows(beam.notes, window_beats=self.window_bars * self.beats_per_bar, hop_beats=self.beats_per_bar)
        verdicts = self.client.score([w for _, _, w in cut], origin_beats=[s for s, _, _ in cut], min_coverage=self.min_coverage)
        self._show(beam.bars)
        if self.progress:
            self.progress("")
        return SearchResult(
            notes=beam.notes,
            bars=beam.bars,
            complete=complete,
            stopped=stopped,
            origins=beam.origins,
            sections=self.sections,
            windows=tuple(WindowResult(round(s / self.beats_per_bar), s, e, v) for (s, e, _), v in zip(cut, verdicts, strict=True)),
            evaluations=self.evaluations,
            dead_ends=self.dead_ends,
            backtracks=self.backtracks,
            seconds=time.perf_counter() - self._began,
            generation_seconds=self.generation_seconds,
            scoring_seconds=self.scoring_seconds,
            settings=self.settings,
        )

    def _tried(self) -> str:
        """What the search tried, for the message it gives up with."""
        if not self.proposed:
            return f"generator {self.name!r} proposed no candidate bars in {self.expansions} requests"
        reasons = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.rejected.items()))
        vetoes = ", ".join(f"{exemplar} ({count})" for exemplar, count in self.vetoes.most_common(3))
        return (
            f"no candidate survived; generator {self.name!r} was asked {self.expansions} times for up to {self.candidates} "
            f"bars and proposed {self.proposed}; {self.evaluations} windows scored, {self.dead_ends} dead ends, {self.backtracks} backtracks; "
            f"the longest phrase reached {self.deepest} of {self.bars} bars; rejected: {reasons or 'none'}"
            + (f"; vetoed most often by {vetoes}" if vetoes else "")
        )

    def _show(self, bars: int) -> None:
        if self.progress:
            done = round(20 * bars / self.bars)
            self.progress(
                f"search [{'#' * done}{'.' * (20 - done)}] {bars}/{self.bars} bars, {self.evaluations} evaluations, "
                f"{self.dead_ends} dead ends, {self.backtracks} backtracks, {time.perf_counter() - self._began:.0f} s"
            )


# --- the command's one call ------------------------------------------------------------------------------


def report_path(output: str | os.PathLike[str]) -> Path:
    """Where the JSON report of a search written to ``output`` goes: beside it, ending in .json."""
    return Path(output).with_suffix(".json")


def check_output(output: str | os.PathLike[str]) -> Path:
    """The MIDI path to write, checked before a search spends any time."""
    path = Path(output)
    if path.suffix.lower() not in (".mid", ".midi"):
        raise ParameterError(f"output={str(output)!r} must end in .mid or .midi")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: no such directory for the output")
    return path


def run_search(
    output: str | os.PathLike[str],
    *,
    server: str | None = None,
    tls_ca: str | None = None,
    library: str | os.PathLike[str] | None = None,
    generator: str = defaults.GENERATOR,
    start: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    beats_per_bar: int = defaults.BEATS_PER_BAR,
    progress: Progress | None = None,
    **options: Any,
) -> SearchResult:
    """Search (``options`` as for :class:`PhraseSearch`) and write the MIDI file ``output`` and its JSON report.

    Scores through the server at ``server`` (``host:port``), or else through a local server started on a free
    loopback port for the run with ``library``. The generator draws on ``library``'s good exemplars either way
    (default: the shipped library).
    """
    path = check_output(output)
    bar_generator = load_generator(generator)
    material_library = Library.open(library)
    material = Material.from_library(material_library, beats_per_bar=beats_per_bar)
    start_notes = read_notes(start) if start is not None else None
    with contextlib.ExitStack() as stack:
        if server is None:
            from .server.app import BackgroundServer, ServerConfig  # noqa: PLC0415

            local = stack.enter_context(BackgroundServer(ServerConfig(library=material_library.path, port=0, backend=backend)))
            target = local.target
        else:
            target = server
        client = stack.enter_context(Client(target, tls_ca=tls_ca))
        served = client.library()
        result = PhraseSearch(
            client, bar_generator, material=material, name=generator, start=start_notes, beats_per_bar=beats_per_bar,
            progress=progress, **options,
        ).run()
    write_midi(path, result.notes, beats_per_bar=beats_per_bar)
    report = {
        "output": str(path),
        "server": server or "local",
        "library": {"name": served.name, "version": served.version, "min_coverage": served.thresholds.min_coverage},
        "material": str(material_library.path),
        "start": None if start is None else str(start),
        **result.to_dict(),
    }
    write_output(report_path(path), (json.dumps(report, indent=2) + "\n").encode())
    return result
