"""What a curator looks at: an exemplar's summary, why a fragment was judged as it was, a piece's timeline.

These gather what the pictures in :mod:`rollmatch.draw` and the lines the CLI prints need: notes, bars,
thresholds in force and matches placed where they matched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import defaults
from .bars import Bars, regular_bars
from .draw import Picture, timeline_picture
from .engine import Mode, SearchSpace
from .explanation import Explanation, Placed, alignment_text, coverage_text, placed_text
from .library import Library
from .manifest import Exemplar
from .notes import pitch_name, span_beats, transform_notes
from .readers import Piece, TrackSelector, format_of, read_piece
from .scoring import FileResult, Scorer
from .verdict import Label, Match, Outcome, Thresholds, fraction_text, percent_pair


def bars_of(
    source: Piece | Path,
    end_beat: float,
    *,
    beats_per_bar: float | None = None,
    tracks: TrackSelector = None,
) -> Bars:
    """The bars to draw for a piece: regular bars of ``beats_per_bar`` when given, else the piece's own, else
    (a JSON note list states no metre) regular bars of :data:`~rollmatch.defaults.BEATS_PER_BAR`.

    ``source`` is a piece already read, or the path of one, read (with ``tracks``) only if its own bars are
    needed."""
    name = source.name
    if beats_per_bar is not None:
        return regular_bars(beats_per_bar, end_beat)
    if format_of(name) == "json":
        return regular_bars(defaults.BEATS_PER_BAR, end_beat)
    return (source if isinstance(source, Piece) else read_piece(source, tracks=tracks)).bars


# --- an exemplar ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExemplarSummary:
    """One exemplar's notes with what a curator wants to know about them."""

    exemplar: Exemplar
    notes: np.ndarray  #: (n,) notes in beats from the exemplar's own beat 0
    bars: Bars  #: the piece's bars over the exemplar, beats counted from its beat 0
    length_beats: float  #: the selection's length, else the notes' span
    threshold: float  #: similarity threshold in force for it
    mode: Mode  #: how it is matched

    @property
    def own_threshold(self) -> bool:
        """Whether the threshold in force is the exemplar's own rather than its label's."""
        return self.exemplar.threshold is not None

    @property
    def title(self) -> str:
        return f"{self.exemplar.id} ({self.exemplar.label.value}): {self.notes.size} notes, {self.length_beats:g} beats"


def summarize_exemplar(library: Library, exemplar_id: str, *, beats_per_bar: float | None = None) -> ExemplarSummary:
    """Read one exemplar's notes and its piece's bars (regular bars of ``beats_per_bar`` when given).

    Raises :class:`~rollmatch.errors.NotFoundError` for an unknown id and
    :class:`~rollmatch.errors.LibraryError` when its file cannot be read.
    """
    exemplar = library.get(exemplar_id)
    notes = library.exemplar_notes(exemplar_id)
    start = exemplar.start_beat or 0.0
    length = exemplar.end_beat - start if exemplar.end_beat is not None else span_beats(notes)
    bars = bars_of(library.path / exemplar.file, start + length, beats_per_bar=beats_per_bar, tracks=exemplar.tracks)
    label_thresholds = library.config.thresholds
    label_threshold = label_thresholds.bad if exemplar.label is Label.BAD else label_thresholds.good
    return ExemplarSummary(
        exemplar=exemplar,
        notes=notes,
        bars=bars.window(start, start + length),
        length_beats=length,
        threshold=label_threshold if exemplar.threshold is None else exemplar.threshold,
        mode=library.mode_of(exemplar),
    )


def summary_rows(summary: ExemplarSummary) -> list[tuple[str, str]]:
    """The summary as (field, value) pairs: file, notes, length, threshold, tags, description, provenance."""
    e, notes = summary.exemplar, summary.notes
    selection = f"beats {e.beat_range}"
    tracks = "all tracks" if e.tracks is None else "tracks " + ", ".join(str(t) for t in e.tracks)
    if notes.size:
        low, high = int(notes["pitch"].min()), int(notes["pitch"].max())
        pitches = (
            f"{notes.size}, pitches {pitch_name(low)} ({low}) to {pitch_name(high)} ({high}), {high - low} semitones"
        )
    else:
        pitches = "none"
    count = summary.bars.count(summary.length_beats)
    numbers = summary.bars.numbers[:count]
    bar_range = f" (bars {numbers[0]}-{numbers[-1]} of the piece)" if numbers.size else ""
    source = "its own" if summary.own_threshold else f"the library's {e.label.value} threshold"
    mode_source = "its own" if e.mode is not None else "the library's"
    return [
        ("file", f"{e.file}, {selection}, {tracks}"),
        ("notes", pitches),
        ("length", f"{summary.length_beats:g} beats, {count} bar{'' if count == 1 else 's'}{bar_range}"),
        ("threshold", f"{summary.threshold:g} ({source})"),
        ("mode", f"{summary.mode.value} ({mode_source})"),
        ("tags", " ".join(e.tags) or "-"),
        ("description", e.description or "-"),
        ("provenance", e.provenance or "-"),
    ]


def summary_lines(summary: ExemplarSummary) -> list[str]:
    """The summary as aligned 'field  value' lines for people."""
    e = summary.exemplar
    return [f"{e.id}  {e.label.value} exemplar", *(f"  {name:<12} {value}" for name, value in summary_rows(summary))]


# --- a fragment's verdict ---------------------------------------------------------------------------------


def place(exemplar: np.ndarray, match: Match) -> np.ndarray:
    """Exemplar notes as the match lays them on the fragment: transposed by ``match.transpose`` semitones,
    stretched by ``match.stretch`` from the first onset, which lands on fragment beat ``match.shift_beats``
    (negative when the fragment is a piece from inside a longer exemplar), as the engine aligns them."""
    placed = transform_notes(exemplar, transpose=match.transpose, stretch=match.stretch)
    first = float(placed["start"].min()) if placed.size else 0.0
    placed["start"] += match.shift_beats - first
    placed["end"] += match.shift_beats - first
    return placed


def explain(
    notes: np.ndarray,
    scorer: Scorer,
    *,
    name: str = "fragment",
    bars: Bars | None = None,
    space: SearchSpace | None = None,
    thresholds: Thresholds | None = None,
) -> Explanation:
    """Judge one fragment (notes in beats) in ``space`` against ``thresholds`` (None: the library's) and place
    its best good and best bad exemplar where they matched.

    ``bars`` default to regular bars of :data:`~rollmatch.defaults.BEATS_PER_BAR`.
    """
    verdict = scorer.score([notes], space=space, thresholds=thresholds)[0]
    modes = dict(zip(scorer.ids, scorer.modes, strict=True))

    def placed(found: Match | None, label: Label) -> Placed | None:
        if found is None:
            return None
        exemplar = scorer.library.exemplar_notes(found.exemplar)
        needs = verdict.min_coverage if label is Label.GOOD else 0.0
        return Placed(found, label, place(exemplar, found), modes[found.exemplar], needs)

    return Explanation(
        name=name,
        fragment=notes,
        verdict=verdict,
        good=placed(verdict.good, Label.GOOD),
        bad=placed(verdict.bad, Label.BAD),
        bars=bars if bars is not None else regular_bars(defaults.BEATS_PER_BAR, span_beats(notes)),
    )


def explain_file(
    path: str | os.PathLike[str],
    scorer: Scorer,
    *,
    tracks: TrackSelector = None,
    beats_per_bar: float | None = None,
    space: SearchSpace | None = None,
    thresholds: Thresholds | None = None,
) -> Explanation:
    """:func:`explain` for a file, with the file's own bars (regular bars of ``beats_per_bar`` when given)."""
    piece = read_piece(path, tracks=tracks)
    notes = piece.select()
    return explain(
        notes,
        scorer,
        name=Path(path).name,
        bars=bars_of(piece, span_beats(notes), beats_per_bar=beats_per_bar),
        space=space,
        thresholds=thresholds,
    )


_RULES = {
    Outcome.GOOD: (
        "a good exemplar reaches its threshold, covering enough of the fragment, and no bad one reaches its own"
    ),
    Outcome.VETOED: "a bad exemplar reaches its threshold, which vetoes whatever else matches",
    Outcome.UNMATCHED: "no exemplar reaches its threshold",
}


def _why(explanation: Explanation) -> str:
    good = explanation.good
    if explanation.verdict.outcome is Outcome.UNMATCHED and good is not None and good.reached and not good.covers:
        covered, needed = percent_pair(good.match.coverage, good.min_coverage)
        return (
            f"the best good exemplar reaches its threshold but covers only {covered} of the fragment, and GOOD "
            f"needs {needed}; no bad exemplar reaches its own"
        )
    return _RULES[explanation.verdict.outcome]


def explanation_lines(explanation: Explanation) -> list[str]:
    """The verdict, the rule that gave it and where each best exemplar matched, for people."""
    verdict = explanation.verdict
    lines = [f"{explanation.name}: {verdict.outcome.value}, score {verdict.score:.3f}", f"  why: {_why(explanation)}"]
    for label, found in ((Label.GOOD, explanation.good), (Label.BAD, explanation.bad)):
        if found is None:
            lines.append(f"  best {label.value}: none (no {label.value} exemplar overlaps the fragment)")
            continue
        lines.append(f"  {placed_text(found)}, {coverage_text(found)}")
        m = found.match
        lines.append(
            f"    at {alignment_text(m)}: the exemplar moved {m.transpose:+d} semitones and played at "
            f"x{fraction_text(m.stretch)} its length, its first onset on fragment beat {m.shift_beats:g}"
        )
    return lines


# --- a piece window by window -------------------------------------------------------------------------------


def timeline_file(
    path: str | os.PathLike[str],
    windows: Sequence[FileResult],
    *,
    thresholds: Thresholds,
    tracks: TrackSelector = None,
    beats_per_bar: float | None = None,
) -> Picture:
    """The window-score timeline of a file (see :func:`rollmatch.draw.timeline_picture`) under its roll, with
    the file's own bars (regular bars of ``beats_per_bar`` when given)."""
    piece = read_piece(path, tracks=tracks)
    notes = piece.select()
    ends = [w.end_beat for w in windows if w.end_beat is not None]
    bars = bars_of(piece, max([span_beats(notes), *ends]), beats_per_bar=beats_per_bar)
    return timeline_picture(
        notes,
        windows,
        thresholds=thresholds,
        bars=bars,
        title=f"{Path(path).name}: {len(windows)} window{'' if len(windows) == 1 else 's'}",
    )
