"""Novelty and diversity figures of a search's result: pure functions over note arrays (beats).

Optimizing against a critic collapses diversity, so a result is reported with how much of the library it
uses and how varied it is next to the library itself: the entropy (bits) of its pitch classes, weighted by
sounding time, and of its note lengths, against the same figures for the good exemplars.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import defaults


def entropy_bits(weights: np.ndarray) -> float:
    """Shannon entropy (bits) of a distribution given by non-negative ``weights``; 0 for none."""
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    p = weights[weights > 0] / total
    return float(-(p * np.log2(p)).sum())


def pitch_class_entropy(notes: np.ndarray) -> float:
    """Entropy (bits, at most log2 12 = 3.585) of the pitch classes, weighted by sounding time."""
    return entropy_bits(np.bincount(notes["pitch"] % 12, weights=notes["end"] - notes["start"], minlength=12))


def rhythm_entropy(notes: np.ndarray, *, steps_per_beat: int = defaults.STEPS_PER_BEAT) -> float:
    """Entropy (bits) of the note lengths, counted in grid steps."""
    steps = np.maximum(np.round((notes["end"] - notes["start"]) * steps_per_beat), 1).astype(np.int64)
    return entropy_bits(np.bincount(steps).astype(np.float64))


def diversity(notes: np.ndarray, explained: Sequence[str | None], library: Sequence[np.ndarray]) -> dict[str, Any]:
    """The diversity figures of a result: ``explained`` names, per window, the good exemplar that explains
    it (None for a window no good exemplar explains); ``library`` holds the good exemplars' notes."""
    reuse = Counter(e for e in explained if e is not None)
    pooled = np.concatenate(list(library)) if library else notes[:0]
    return {
        "distinct_exemplars": len(reuse),
        "reuse": dict(sorted(reuse.items(), key=lambda item: (-item[1], item[0]))),
        "reuse_histogram": {str(k): v for k, v in sorted(Counter(reuse.values()).items())},
        "largest_share": round(max(reuse.values()) / len(explained), 4) if reuse else 0.0,
        "pitch_class_entropy": {
            "result": round(pitch_class_entropy(notes), 3),
            "library": round(pitch_class_entropy(pooled), 3),
        },
        "rhythm_entropy": {"result": round(rhythm_entropy(notes), 3), "library": round(rhythm_entropy(pooled), 3)},
    }


def pairwise_similarity(pieces: Sequence[np.ndarray], *, transpose_range: int = defaults.TRANSPOSE_RANGE) -> np.ndarray:
    """(N, N) near-copy similarity between every two pieces (notes in beats), each judged against the other
    as a fragment against an exemplar over transpositions and time shifts at stretch 1; the larger of the
    two directions, and 1 on the diagonal."""
    from .engine import SearchSpace, TemplateBank, match  # noqa: PLC0415  (only needed for results compared)

    bank = TemplateBank(list(pieces), SearchSpace(stretches=(1.0,), transpose_range=transpose_range))
    sims = match(list(pieces), bank).similarity
    out: np.ndarray = np.maximum(sims, sims.T)
    np.fill_diagonal(out, 1.0)
    return out
