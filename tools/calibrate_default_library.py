"""Measure the default library's similarity and coverage distributions and the thresholds that separate them.

Run from the repository root: ``python tools/calibrate_default_library.py`` (about ten minutes, most of it
music21 parsing the held-out chorales). It prints:

- good positives (every good exemplar transposed, stretched, 10% of notes dropped and 10% random notes added)
  standing alone, and the same embedded between stretches of unrelated chorale music (windows half filler);
- windows of the good exemplars' own chorales at three lengths, and the coverage of those that reach τ_good;
- negatives: the first phrases of held-out chorales, and 8-beat windows (every 2 beats) over whole held-out
  chorales, against each bad exemplar in its mode;
- bad positives: noisy copies of each bad exemplar, and the two-voice patterns set into real chorale textures
  (bass and tenor replaced for the pattern's span);
- the degenerate probes of ``rollmatch library check``;

and error rates at candidate thresholds. The figures are copied into exemplars/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_default_library import VOICES, held_out_chorales

from rollmatch import Label, Library, Outcome, Scorer, transform_notes
from rollmatch.calibrate import best_of
from rollmatch.defaults import STRETCHES, TRANSPOSE_RANGE
from rollmatch.notes import perturb_notes, select_beats, sort_notes, span_beats
from rollmatch.probes import degenerate_probes
from rollmatch.readers import read_notes, read_piece
from rollmatch.verdict import reaches

SEED = 2026
HELD_OUT = 48  #: held-out chorales whose first phrase is a negative, and whose voices hold the embedded patterns
VARIANTS = 4  #: noisy positives per exemplar
WINDOW_BEATS, WINDOW_HOP = 8.0, 2.0  #: windows over whole held-out chorales
SOURCE_WINDOWS = (8.0, 12.0, 16.0)  #: window lengths over the good exemplars' own chorales
PAIRS = ("parallel-fifths-pair", "parallel-octaves-pair")


def noisy(notes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``notes`` perturbed, transposed within MIDI's range and stretched by a default factor."""
    lo, hi = int(notes["pitch"].min()), int(notes["pitch"].max())
    t = int(rng.integers(max(-TRANSPOSE_RANGE, -lo), min(TRANSPOSE_RANGE, 127 - hi) + 1))
    return transform_notes(perturb_notes(notes, rng), transpose=t, stretch=float(rng.choice(STRETCHES)))


def embedded(core: np.ndarray, context: np.ndarray) -> np.ndarray:
    """``core`` placed between two 4-beat stretches of unrelated music."""
    after = transform_notes(select_beats(context, 4, 8), shift_beats=4 + float(core["end"].max()))
    return sort_notes(np.concatenate([select_beats(context, 0, 4), transform_notes(core, shift_beats=4), after]))


def set_into(pattern: np.ndarray, voices: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A two-voice pattern in place of a chorale's bass and tenor for its span (at x1/2 or x1, moved to the
    bass's register), its soprano and alto kept: the fault inside a real four-voice texture."""
    pattern = transform_notes(pattern, stretch=float(rng.choice([0.5, 1.0])))
    start, span = float(rng.integers(0, 4)), span_beats(pattern)
    bass = select_beats(voices["Bass"], start, start + span)
    t = int(np.median(bass["pitch"]) - pattern["pitch"].min()) if bass.size else 0
    kept = [select_beats(voices[v], 0, 8) for v in ("Soprano", "Alto")]
    for v in ("Tenor", "Bass"):
        part = select_beats(voices[v], 0, 8)
        kept.append(part[(part["end"] <= start) | (part["start"] >= start + span)])
    return sort_notes(np.concatenate([*kept, transform_notes(pattern, transpose=t, shift_beats=start)]))


def summary(values: np.ndarray) -> str:
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return "min {:.3f}  p5 {:.3f}  median {:.3f}  p95 {:.3f}  max {:.3f}".format(*q)


def main() -> int:
    rng = np.random.default_rng(SEED)
    library = Library.open("exemplars")
    scorer = Scorer(library, backend="cpu")
    config = library.config
    exemplar_notes = library.notes()
    ids = list(scorer.ids)
    is_bad = scorer.is_bad
    thresholds = scorer.thresholds()
    good_ids = [e.id for e in library.exemplars if e.label is Label.GOOD]

    print("reading the held-out chorales ...", file=sys.stderr)
    held_out = held_out_chorales()
    pieces = [(read_piece(path), end) for path, end in held_out]  # each chorale parsed once
    phrases = [piece.select(None, end) for piece, end in pieces[:HELD_OUT]]
    contexts = [piece.select(end, end + 8) for piece, end in pieces[:HELD_OUT]]
    windows = [
        w
        for piece, _ in pieces
        for w in (
            piece.select(s, s + WINDOW_BEATS)
            for s in np.arange(0, max(span_beats(piece.notes) - WINDOW_BEATS, 0) + 1e-9, WINDOW_HOP)
        )
        if w.size
    ]
    voices = [{v: read_notes(path, tracks=[v], end_beat=8) for v in VOICES} for path, _ in held_out[:HELD_OUT]]
    print(
        f"library {library.path} version {library.version}: {len(ids)} exemplars; {len(phrases)} held-out phrases, "
        f"{len(windows)} held-out windows of {WINDOW_BEATS:g} beats every {WINDOW_HOP:g}"
    )

    # Good positives, alone and half filler.
    good_notes = [(k, n) for k, n in enumerate(exemplar_notes) if not is_bad[k]]
    alone = [(k, noisy(n, rng)) for k, n in good_notes * VARIANTS]
    pos = scorer.similarities([n for _, n in alone])
    own = np.array([k for k, _ in alone])
    rows = np.arange(len(alone))
    print(
        f"\ngood positives found their own exemplar as the best good match: "
        f"{int(np.sum(np.argmax(np.where(is_bad, -1, pos.similarity), axis=1) == own))}/{len(alone)}"
    )
    print(f"good positives alone, similarity to their own:   {summary(pos.similarity[rows, own])}")
    print(f"good positives alone, coverage of that match:    {summary(pos.coverage[rows, own])}")
    print(f"good positives alone, best bad similarity:       {summary(best_of(pos.similarity, is_bad))}")
    half = scorer.similarities([embedded(n, contexts[i % len(contexts)]) for i, (_, n) in enumerate(alone)])
    print(f"the same between unrelated music, similarity:    {summary(half.similarity[rows, own])}")
    print(f"the same between unrelated music, coverage:      {summary(half.coverage[rows, own])}")

    # Windows of the good exemplars' own chorales.
    for beats in SOURCE_WINDOWS:
        cut = []
        for e in library.exemplars:
            if e.label is Label.BAD:
                continue
            whole = read_notes(library.path / e.file, tracks=e.tracks)
            cut += [
                w
                for w in (select_beats(whole, s, s + beats) for s in np.arange(0, span_beats(whole) - beats / 2, 4.0))
                if w.size
            ]
        best = scorer.similarities(cut)
        reached = reaches(best.similarity, thresholds[None, :]) & ~is_bad[None, :]
        covered = np.where(reached, best.coverage, -1.0).max(axis=1)[reached.any(axis=1)]
        print(
            f"own-chorale windows of {beats:g} beats (every 4): {len(cut)}, {covered.size} reach τ_good; their best "
            f"coverage: {summary(covered)}; "
            f">= {config.min_coverage:g}: {np.mean(reaches(covered, config.min_coverage)):.0%}"
        )

    # Negatives.
    neg = scorer.similarities(phrases)
    covers = reaches(neg.coverage, config.min_coverage)
    print(
        f"\nheld-out phrases, best good similarity (covering {config.min_coverage:g}): "
        f"{summary(best_of(neg.similarity, ~is_bad[None, :] & covers))}"
    )
    print(f"held-out phrases, best bad similarity:                 {summary(best_of(neg.similarity, is_bad))}")
    win = scorer.similarities(windows).similarity
    print(
        f"\n{'bad exemplar':<24}{'mode':<11}{'threshold':>10}{'positives min':>15}"
        f"{'held-out max':>14}{'p99':>8}{'vetoed':>9}"
    )
    copies = {
        k: scorer.similarities([noisy(exemplar_notes[k], rng) for _ in range(8)]).similarity[:, k]
        for k in np.flatnonzero(is_bad)
    }
    for k in np.flatnonzero(is_bad):
        column = win[:, k]
        print(
            f"{ids[k]:<24}{scorer.modes[k].value:<11}{thresholds[k]:>10g}{copies[k].min():>15.3f}{column.max():>14.3f}"
            f"{np.percentile(column, 99):>8.3f}{np.mean(reaches(column, thresholds[k])):>9.2%}"
        )
    for name in PAIRS:
        k = ids.index(name)
        textures = [set_into(exemplar_notes[k], v, rng) for v in voices]
        sims = scorer.similarities(textures).similarity[:, k]
        inside = scorer.score(textures)
        vetoed = sum(v.outcome is Outcome.VETOED for v in inside)
        print(
            f"{name} set into {len(voices)} held-out four-voice textures: similarity {summary(sims)}; "
            f"VETOED {vetoed}/{len(inside)}"
        )

    # Probes.
    probes = degenerate_probes([(i, n) for i, (_, n) in zip(good_ids, good_notes, strict=True)])
    verdicts = scorer.score([p.notes for p in probes])
    print(f"\ndegenerate probes: {len(probes)}, judged GOOD: {sum(v.outcome is Outcome.GOOD for v in verdicts)}")
    for family in dict.fromkeys(p.family for p in probes):
        sims = [
            v.good.similarity if v.good else 0.0 for p, v in zip(probes, verdicts, strict=True) if p.family == family
        ]
        print(f"  {family:<22} {len(sims):>4} probes, best good similarity {max(sims):.3f}")

    # Thresholds.
    pos_good, pos_cov = pos.similarity[rows, own], pos.coverage[rows, own]
    neg_good = best_of(neg.similarity, ~is_bad[None, :] & covers)
    near_copy_bad = is_bad & np.array([m.value == "near-copy" for m in scorer.modes])
    bad_pos = np.concatenate([copies[k] for k in np.flatnonzero(near_copy_bad)])
    neg_bad = best_of(win, near_copy_bad)
    print("\nthreshold  good-missed  phrases-called-good  near-copy-bad-missed  windows-vetoed-by-near-copy")
    for tau in np.arange(0.60, 0.96, 0.025):
        print(
            f"  {tau:.3f}    {np.mean(~reaches(pos_good, tau) | ~reaches(pos_cov, config.min_coverage)):10.1%}  "
            f"{np.mean(reaches(neg_good, tau)):18.1%}  {np.mean(~reaches(bad_pos, tau)):19.1%}  "
            f"{np.mean(reaches(neg_bad, tau)):26.2%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
