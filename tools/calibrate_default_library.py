"""Measure the default library's similarity distributions and the thresholds that separate them.

Run from the repository root: ``python tools/calibrate_default_library.py``. It prints, for good and for bad
exemplars, the similarities of positives (every exemplar transposed, stretched, embedded between unrelated
held-out chorale music, with 10% of notes dropped and 10% random notes added) and of negatives (held-out
chorale phrases, none of them in the library), and the error rates at candidate thresholds. The figures are
copied into exemplars/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_default_library import held_out_chorales  # noqa: E402

from rollmatch import Library, Scorer, transform_notes  # noqa: E402
from rollmatch.calibrate import best_of  # noqa: E402
from rollmatch.defaults import STRETCHES, TRANSPOSE_RANGE  # noqa: E402
from rollmatch.notes import perturb_notes, select_beats, sort_notes  # noqa: E402
from rollmatch.readers import read_piece  # noqa: E402

SEED = 2026
HELD_OUT = 48
VARIANTS = 4  # noisy positives per exemplar


def embedded_variant(notes: np.ndarray, context: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``notes`` perturbed, transposed, stretched and placed between two stretches of unrelated music."""
    lo, hi = int(notes["pitch"].min()), int(notes["pitch"].max())
    t = int(rng.integers(max(-TRANSPOSE_RANGE, -lo), min(TRANSPOSE_RANGE, 127 - hi) + 1))
    stretch = float(rng.choice(STRETCHES))
    core = transform_notes(perturb_notes(notes, rng), transpose=t, stretch=stretch)
    before = select_beats(context, 0, 4)
    after = transform_notes(select_beats(context, 4, 8), shift_beats=4 + float(core["end"].max()))
    return sort_notes(np.concatenate([before, transform_notes(core, shift_beats=4), after]))


def summary(values: np.ndarray) -> str:
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return "min {:.3f}  p5 {:.3f}  median {:.3f}  p95 {:.3f}  max {:.3f}".format(*q)


def main() -> int:
    rng = np.random.default_rng(SEED)
    library = Library.open("exemplars")
    scorer = Scorer(library, backend="cpu")
    exemplar_notes = library.notes()
    held_out = held_out_chorales()[:HELD_OUT]
    pieces = [(read_piece(path), end) for path, end in held_out]  # each chorale parsed once
    phrases = [piece.select(None, end) for piece, end in pieces]
    contexts = [piece.select(end, end + 8) for piece, end in pieces]

    is_bad = np.tile(scorer.is_bad, VARIANTS)
    own_index = np.tile(np.arange(len(exemplar_notes)), VARIANTS)
    positives = [embedded_variant(n, contexts[i % len(contexts)], rng) for i, n in enumerate(exemplar_notes * VARIANTS)]
    pos = scorer.similarities(positives).similarity
    neg = scorer.similarities(phrases).similarity
    # The best similarity of every fragment to each label; a positive is judged by its own label.
    pos_to_good, pos_to_bad = best_of(pos, ~scorer.is_bad), best_of(pos, scorer.is_bad)
    pos_good, pos_bad, good_on_bad = pos_to_good[~is_bad], pos_to_bad[is_bad], pos_to_bad[~is_bad]
    neg_good, neg_bad = best_of(neg, ~scorer.is_bad), best_of(neg, scorer.is_bad)
    same_label = np.where(is_bad[:, None], scorer.is_bad[None, :], ~scorer.is_bad[None, :])
    own = int(np.sum(np.argmax(np.where(same_label, pos, -1.0), axis=1) == own_index))

    print(f"library {library.path} version {library.version}: {len(exemplar_notes)} exemplars, {len(phrases)} held-out phrases")
    print(f"positives found their own exemplar as the best match: {own}/{len(positives)}")
    print(f"good positives, similarity to good:      {summary(pos_good)}")
    print(f"held-out phrases, best good similarity:  {summary(neg_good)}")
    print(f"bad positives, similarity to bad:        {summary(pos_bad)}")
    print(f"held-out phrases, best bad similarity:   {summary(neg_bad)}")
    print(f"good positives, best bad similarity:     {summary(good_on_bad)}")
    print("threshold  good-missed  phrases-called-good  bad-missed  phrases-vetoed  good-positives-vetoed")
    for tau in np.arange(0.60, 0.96, 0.025):
        print(f"  {tau:.3f}    {np.mean(pos_good < tau):10.1%}  {np.mean(neg_good >= tau):18.1%}  "
              f"{np.mean(pos_bad < tau):9.1%}  {np.mean(neg_bad >= tau):13.1%}  {np.mean(good_on_bad >= tau):20.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
