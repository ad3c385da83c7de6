"""The veto rule: from similarities to GOOD / VETOED / UNMATCHED verdicts that explain themselves.

g is the best similarity to a good exemplar and b the best to a bad one. A fragment is GOOD when some good
exemplar reaches its threshold with a coverage (the share of the fragment inside the match's window) of at
least ``min_coverage``, and no bad one reaches its own threshold; VETOED as soon as any bad exemplar reaches its
threshold, whatever else matches and however little of the fragment it covers; UNMATCHED otherwise.

The continuous score is ``tier + (g + (1 - b)) / 2`` with tier 1 for GOOD, 0 for UNMATCHED and -1 for VETOED,
so every GOOD fragment (score > 1) ranks above every other one, and within a verdict fragments rank by how
close they come to the good exemplars and how far they stay from the bad ones.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from . import defaults
from .checks import number
from .engine import BestMatches


class Label(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"


class Outcome(enum.StrEnum):
    GOOD = "GOOD"
    VETOED = "VETOED"
    UNMATCHED = "UNMATCHED"


_TIER = {Outcome.GOOD: 1.0, Outcome.UNMATCHED: 0.0, Outcome.VETOED: -1.0}


@dataclass(frozen=True)
class Thresholds:
    """The veto rule's settings, validated once, here: the similarity a good and a bad exemplar must reach to
    count (an exemplar's own threshold wins over its label's), and the share of a fragment a good match must
    cover for GOOD."""

    good: float = defaults.GOOD_THRESHOLD  #: in (0, 1]
    bad: float = defaults.BAD_THRESHOLD  #: in (0, 1]
    min_coverage: float = defaults.MIN_COVERAGE  #: in [0, 1]; 0 requires nothing

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once, here
        set_(self, "good", number(self.good, "good_threshold", above=0, at_most=1))
        set_(self, "bad", number(self.bad, "bad_threshold", above=0, at_most=1))
        set_(self, "min_coverage", number(self.min_coverage, "min_coverage", at_least=0, at_most=1))

    def overridden(
        self, *, good: float | None = None, bad: float | None = None, min_coverage: float | None = None
    ) -> Thresholds:
        """These thresholds with the given ones replaced (None keeps one)."""
        given = {"good": good, "bad": bad, "min_coverage": min_coverage}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def for_exemplars(self, is_bad: np.ndarray, overrides: np.ndarray) -> np.ndarray:
        """(K,) the threshold in force for each of K exemplars: its own (``overrides``, NaN for none), else its
        label's; ``is_bad`` (K,) marks the bad ones."""
        return np.where(np.isnan(overrides), np.where(is_bad, self.bad, self.good), overrides)

    def to_dict(self) -> dict[str, float]:
        return {"good_threshold": self.good, "bad_threshold": self.bad, "min_coverage": self.min_coverage}


@dataclass(frozen=True)
class Match:
    """Why a fragment resembles one exemplar: where the exemplar lands inside the fragment."""

    exemplar: str  #: exemplar id
    similarity: float  #: normalized correlation in [0, 1]
    transpose: int  #: semitones added to the exemplar
    shift_beats: float  #: fragment beat where the exemplar's first onset lands
    stretch: float  #: time-stretch factor applied to the exemplar
    coverage: float  #: share of the fragment's sounding cells inside the match's window, in [0, 1]
    threshold: float  #: the similarity threshold in force for this exemplar when it was judged

    @property
    def reached(self) -> bool:
        """Whether the similarity reaches the threshold it was judged against."""
        return bool(reaches(self.similarity, self.threshold))

    def to_dict(self) -> dict[str, Any]:
        return {
            "exemplar": self.exemplar,
            "similarity": round(self.similarity, 4),
            "transpose": self.transpose,
            "shift_beats": round(self.shift_beats, 4),
            "stretch": round(self.stretch, 6),
            "coverage": round(self.coverage, 4),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class Verdict:
    """The judgement of one fragment, with the best good and best bad match that explain it."""

    outcome: Outcome
    score: float
    good: Match | None
    bad: Match | None
    min_coverage: float  #: the share of the fragment a good match had to cover for GOOD
    top: tuple[Match, ...] = ()  #: the best matches of any label, most similar first, when asked for
    #: the most similar good exemplar, whatever it reaches or covers: how near the fragment is to a copy
    nearest: Match | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.outcome.value,
            "score": round(self.score, 4),
            "good": self.good.to_dict() if self.good else None,
            "bad": self.bad.to_dict() if self.bad else None,
            "min_coverage": self.min_coverage,
        }
        if self.top:
            out["top"] = [m.to_dict() for m in self.top]
        if self.nearest:
            out["nearest"] = self.nearest.to_dict()
        return out


def fraction_text(value: float) -> str:
    """A stretch factor as a short fraction: 0.5 -> '1/2', 1.0 -> '1'."""
    return str(Fraction(float(value)).limit_denominator(64))


def percent_text(share: float) -> str:
    """A share as a whole percentage, rounded down (within the tie tolerance) so that it never shows more
    than it is: 0.596 -> '59%', 0.6 - 1e-9 -> '60%'."""
    return f"{math.floor(share * 100 + defaults.TIE_TOLERANCE * 100):.0f}%"


def percent_pair(share: float, required: float) -> tuple[str, str]:
    """``share`` and ``required`` as percentages, with as many decimals as it takes for them to compare as
    :func:`reaches` does: 0.492 against 0.4925 gives ('49.20%', '49.25%'), not a 49% that seems enough."""
    counts = bool(reaches(share, required)) or required == 0
    for digits in range(5):
        scale = 10**digits
        shown = math.floor(share * 100 * scale + defaults.TIE_TOLERANCE * 100 * scale) / scale
        needed = round(required * 100, digits)
        if (shown >= needed) == counts:
            break
    return f"{shown:.{digits}f}%", f"{needed:.{digits}f}%"


def reaches(similarity: Any, threshold: Any) -> Any:
    """Whether ``similarity`` reaches ``threshold``, scalars or broadcasting arrays: within TIE_TOLERANCE
    counts as reached, so that float noise never decides a tie; 0 (nothing overlaps) reaches nothing, whatever
    the threshold, and a NaN threshold is never reached."""
    return (similarity > 0) & (similarity >= threshold - defaults.TIE_TOLERANCE)


def counting(best: BestMatches, is_bad: np.ndarray, thresholds: np.ndarray, *, min_coverage: float) -> np.ndarray:
    """(B, K) which matches count toward a verdict: a good exemplar that reaches its threshold and covers at
    least ``min_coverage`` of the fragment, a bad one that reaches its threshold. ``is_bad`` and ``thresholds``
    are (K,)."""
    covers = reaches(best.coverage, min_coverage) | is_bad[None, :]
    counts: np.ndarray = reaches(best.similarity, thresholds[None, :]) & covers
    return counts


def judge(
    best: BestMatches,
    ids: tuple[str, ...],
    is_bad: np.ndarray,
    overrides: np.ndarray,
    thresholds: Thresholds,
    *,
    steps_per_beat: int,
    origin_beats: np.ndarray | None = None,
    top_k: int = 0,
) -> list[Verdict]:
    """Apply the veto rule to each fragment of ``best`` (shape (B, K)).

    ``is_bad`` (K,) marks bad exemplars and ``overrides`` (K,) holds each one's own threshold, NaN for none
    (then its label's in ``thresholds`` is in force); a good match counts for GOOD only with a coverage of at
    least ``thresholds.min_coverage``. ``steps_per_beat`` is the grid ``best`` was computed on.
    ``origin_beats`` (B,) is added to every reported shift, e.g. a window's start within its piece.
    ``top_k`` asks for that many best matches of any label as well. ``nearest`` is the most similar good
    exemplar whatever it reaches or covers: the figure a novelty ceiling is held against.
    The reported match for a label is the most similar exemplar that counts (a good one that reaches its
    threshold and covers enough, a bad one that reaches its threshold), else the most similar that reaches
    its threshold, else the most similar one; None when the library has no exemplar of that label or nothing
    overlapped at all. Every match carries the threshold it was judged against.
    """
    in_force = thresholds.for_exemplars(is_bad, overrides)
    found = _Found(best, ids, in_force, steps_per_beat)
    sims = best.similarity
    reached = reaches(sims, in_force[None, :])
    accepts = counting(best, is_bad, in_force, min_coverage=thresholds.min_coverage) & ~is_bad[None, :]
    origins = np.zeros(sims.shape[0]) if origin_beats is None else np.asarray(origin_beats, dtype=np.float64)
    verdicts = []
    for b in range(sims.shape[0]):
        good = found.pick(b, ~is_bad, reached[b].astype(int) + accepts[b], origins[b])
        bad = found.pick(b, is_bad, 2 * reached[b].astype(int), origins[b])
        if np.any(reached[b] & is_bad):
            outcome = Outcome.VETOED
        elif np.any(accepts[b]):
            outcome = Outcome.GOOD
        else:
            outcome = Outcome.UNMATCHED
        g = good.similarity if good else 0.0
        s = bad.similarity if bad else 0.0
        top = tuple(
            found.match(b, int(k), origins[b]) for k in np.argsort(-sims[b], kind="stable")[:top_k] if sims[b, k] > 0
        )
        nearest = found.pick(b, ~is_bad, np.zeros(sims.shape[1], dtype=int), origins[b])
        score = _TIER[outcome] + (g + 1.0 - s) / 2.0
        verdicts.append(Verdict(outcome, score, good, bad, thresholds.min_coverage, top, nearest))
    return verdicts


@dataclass(frozen=True)
class _Found:
    """What :func:`judge` turns into :class:`Match` values: the (B, K) best alignments, the K exemplar ids
    and thresholds in force, and the grid."""

    best: BestMatches
    ids: tuple[str, ...]
    in_force: np.ndarray
    steps_per_beat: int

    def pick(self, b: int, of_label: np.ndarray, rank: np.ndarray, origin: float) -> Match | None:
        """Fragment b's best match among the exemplars ``of_label``: a higher ``rank`` (0-2: reached nothing, its
        threshold, everything that counts) wins, then similarity; ties keep manifest order."""
        candidates = np.flatnonzero(of_label)
        if candidates.size == 0:
            return None
        key = self.best.similarity[b, candidates] + 2.0 * rank[candidates]
        k = int(candidates[np.argmax(key)])
        if self.best.similarity[b, k] <= 0.0:
            return None
        return self.match(b, k, origin)

    def match(self, b: int, k: int, origin: float) -> Match:
        best = self.best
        return Match(
            exemplar=self.ids[k],
            similarity=float(best.similarity[b, k]),
            transpose=int(best.transpose[b, k]),
            shift_beats=float(origin) + float(best.shift_steps[b, k]) / self.steps_per_beat,
            stretch=float(best.stretch[b, k]),
            coverage=float(best.coverage[b, k]),
            threshold=float(self.in_force[k]),
        )
