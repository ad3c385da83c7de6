"""A verdict explained: its best good and best bad exemplar laid over the fragment, and the words for them.

:mod:`rollmatch.inspection` builds an :class:`Explanation`, :mod:`rollmatch.draw` pictures it, and the
``*_text`` functions word it for people in both; this module imports neither, so the dependency runs one way:
inspection -> draw -> explanation -> verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bars import Bars
from .engine import Mode
from .verdict import Label, Match, Verdict, fraction_text, percent_pair, percent_text, reaches


@dataclass(frozen=True)
class Placed:
    """An exemplar laid over the fragment where it matched."""

    match: Match  #: with the threshold in force for this exemplar
    label: Label
    notes: np.ndarray  #: (n,) its notes transposed, stretched and shifted into fragment beats (may start before 0)
    mode: Mode  #: how the exemplar is matched
    min_coverage: float  #: the coverage a good match needs to count for GOOD; 0 for a bad one

    @property
    def reached(self) -> bool:
        return self.match.reached

    @property
    def covers(self) -> bool:
        """Whether the match covers enough of the fragment to count (always, for a bad one)."""
        return bool(reaches(self.match.coverage, self.min_coverage))


@dataclass(frozen=True)
class Explanation:
    """A fragment's verdict with its best good and best bad exemplar placed where they matched."""

    name: str
    fragment: np.ndarray  #: (n,) notes in beats
    verdict: Verdict
    good: Placed | None
    bad: Placed | None
    bars: Bars  #: the fragment's bars


def placed_text(placed: Placed) -> str:
    """How a placed exemplar matched, e.g. 'best good: bwv269-opening (near-copy), similarity 0.912 (threshold
    0.83, reached)'."""
    return f"best {placed.label.value}: {placed.match.exemplar} ({placed.mode.value}), {similarity_text(placed)}"


def similarity_text(placed: Placed) -> str:
    """'similarity 0.912 (threshold 0.83, reached)'."""
    reached = "reached" if placed.reached else "not reached"
    return f"similarity {placed.match.similarity:.3f} (threshold {placed.match.threshold:g}, {reached})"


def coverage_text(placed: Placed) -> str:
    """How much of the fragment a placed exemplar covers, against what GOOD needs for a good one:
    'coverage 95% (needs 60%, enough)', or 'coverage 25%'."""
    if placed.label is not Label.GOOD:
        return f"coverage {percent_text(placed.match.coverage)}"
    covered, needed = percent_pair(placed.match.coverage, placed.min_coverage)
    return f"coverage {covered} (needs {needed}, {'enough' if placed.covers else 'too little'})"


def alignment_text(match: Match) -> str:
    """Where a match lies, e.g. 't+2, shift 0 beats, stretch x1/2'."""
    return f"t{match.transpose:+d}, shift {match.shift_beats:g} beats, stretch x{fraction_text(match.stretch)}"
