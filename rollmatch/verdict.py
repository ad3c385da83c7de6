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
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from . import defaults
from .checks import number
from .engine import BestMatches

if TYPE_CHECKING:
    from .manifest import Exemplar


class Label(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"


class Outcome(enum.StrEnum):
    GOOD = "GOOD"
    VETOED = "VETOED"
    UNMATCHED = "UNMATCHED"


_TIER = {Outcome.GOOD: 1.0, Outcome.UNMATCHED: 0.0, Outcome.VETOED: -1.0}


def check_threshold(value: float, name: str) -> float:
    """Validate a similarity threshold: a number in (0, 1]."""
    return number(value, name, above=0, at_most=1)


def check_coverage(value: float, name: str = "min_coverage") -> float:
    """Validate a coverage requirement: a share in [0, 1] (0 requires nothing)."""
    return number(value, name, at_least=0, at_most=1)


@dataclass(frozen=True)
class Match:
    """Why a fragment resembles one exemplar: where the exemplar lands inside the fragment."""

    exemplar: str  #: exemplar id
    similarity: float  #: normalized correlation in [0, 1]
    transpose: int  #: semitones added to the exemplar
    shift_beats: float  #: fragment beat where the exemplar's first onset lands
    stretch: float  #: time-stretch factor applied to the exemplar
    coverage: float  #: share of the fragment's sounding cells inside the match's window, in [0, 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "exemplar": self.exemplar,
            "similarity": round(self.similarity, 4),
            "transpose": self.transpose,
            "shift_beats": round(self.shift_beats, 4),
            "stretch": round(self.stretch, 6),
            "coverage": round(self.coverage, 4),
        }


@dataclass(frozen=True)
class Verdict:
    """The judgement of one fragment, with the best good and best bad match that explain it."""

    verdict: Outcome
    score: float
    good: Match | None
    bad: Match | None
    top: tuple[Match, ...] = ()  #: the best matches of any label, most similar first, when asked for
    #: the most similar good exemplar, whatever it reaches or covers: how near the fragment is to a copy
    nearest: Match | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "verdict": self.verdict.value,
            "score": round(self.score, 4),
            "good": self.good.to_dict() if self.good else None,
            "bad": self.bad.to_dict() if self.bad else None,
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
    return reaches(best.similarity, thresholds[None, :]) & covers


def label_arrays(exemplars: Sequence[Exemplar]) -> tuple[np.ndarray, np.ndarray]:
    """For K exemplars: (K,) True for the bad ones, and (K,) each one's own threshold, NaN for none."""
    return (
        np.array([e.label is Label.BAD for e in exemplars], dtype=bool),
        np.array([np.nan if e.threshold is None else e.threshold for e in exemplars], dtype=np.float64),
    )


def exemplar_thresholds(
    labels: np.ndarray,
    overrides: np.ndarray,
    *,
    good_threshold: float = defaults.GOOD_THRESHOLD,
    bad_threshold: float = defaults.BAD_THRESHOLD,
) -> np.ndarray:
    """The threshold in force for each of K exemplars: its own override (NaN for none), else the
    threshold of its label. ``labels`` is a (K,) bool array, True for bad exemplars."""
    good_threshold = check_threshold(good_threshold, "good_threshold")
    bad_threshold = check_threshold(bad_threshold, "bad_threshold")
    by_label = np.where(labels, bad_threshold, good_threshold)
    return np.where(np.isnan(overrides), by_label, overrides)


def judge(
    best: BestMatches,
    ids: tuple[str, ...],
    is_bad: np.ndarray,
    thresholds: np.ndarray,
    *,
    steps_per_beat: int,
    min_coverage: float = defaults.MIN_COVERAGE,
    origin_beats: np.ndarray | None = None,
    top_k: int = 0,
) -> list[Verdict]:
    """Apply the veto rule to each fragment of ``best`` (shape (B, K)).

    ``is_bad`` (K,) marks bad exemplars and ``thresholds`` (K,) is the threshold in force for each; a good
    match counts for GOOD only with a coverage of at least ``min_coverage``.
    ``origin_beats`` (B,) is added to every reported shift, e.g. a window's start within its piece.
    ``top_k`` asks for that many best matches of any label as well. ``nearest`` is the most similar good
    exemplar whatever it reaches or covers: the figure a novelty ceiling is held against.
    The reported match for a label is the most similar exemplar that counts (a good one that reaches its
    threshold and covers enough, a bad one that reaches its threshold), else the most similar that reaches
    its threshold, else the most similar one; None when the library has no exemplar of that label or nothing
    overlapped at all.
    """
    min_coverage = check_coverage(min_coverage)
    sims = best.similarity
    reached = reaches(sims, thresholds[None, :])
    accepts = counting(best, is_bad, thresholds, min_coverage=min_coverage) & ~is_bad[None, :]  # good ones that count
    origins = np.zeros(sims.shape[0]) if origin_beats is None else np.asarray(origin_beats, dtype=np.float64)
    verdicts = []
    for b in range(sims.shape[0]):
        good = _pick(best, b, ~is_bad, reached[b].astype(int) + accepts[b], ids, steps_per_beat, origins[b])
        bad = _pick(best, b, is_bad, 2 * reached[b].astype(int), ids, steps_per_beat, origins[b])
        if np.any(reached[b] & is_bad):
            outcome = Outcome.VETOED
        elif np.any(accepts[b]):
            outcome = Outcome.GOOD
        else:
            outcome = Outcome.UNMATCHED
        g = good.similarity if good else 0.0
        s = bad.similarity if bad else 0.0
        top = tuple(
            _match(best, b, int(k), ids, steps_per_beat, origins[b])
            for k in np.argsort(-sims[b], kind="stable")[:top_k]
            if sims[b, k] > 0
        )
        nearest = _pick(best, b, ~is_bad, np.zeros(sims.shape[1], dtype=int), ids, steps_per_beat, origins[b])
        verdicts.append(Verdict(outcome, _TIER[outcome] + (g + 1.0 - s) / 2.0, good, bad, top, nearest))
    return verdicts


def _pick(
    best: BestMatches,
    b: int,
    of_label: np.ndarray,
    rank: np.ndarray,
    ids: tuple[str, ...],
    steps_per_beat: int,
    origin: float,
) -> Match | None:
    candidates = np.flatnonzero(of_label)
    if candidates.size == 0:
        return None
    # A higher rank (0-2: reached nothing, its threshold, everything that counts) wins; then similarity; ties
    # keep manifest order.
    key = best.similarity[b, candidates] + 2.0 * rank[candidates]
    k = int(candidates[np.argmax(key)])
    if best.similarity[b, k] <= 0.0:
        return None
    return _match(best, b, k, ids, steps_per_beat, origin)


def _match(best: BestMatches, b: int, k: int, ids: tuple[str, ...], steps_per_beat: int, origin: float) -> Match:
    return Match(
        exemplar=ids[k],
        similarity=float(best.similarity[b, k]),
        transpose=int(best.transpose[b, k]),
        shift_beats=float(origin) + float(best.shift_steps[b, k]) / steps_per_beat,
        stretch=float(best.stretch[b, k]),
        coverage=float(best.coverage[b, k]),
    )
