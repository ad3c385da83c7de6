"""Choose a library's thresholds from fragments a person has labeled good or bad.

Every labeled fragment is scored once against the library; what is kept of it is its best similarity to a good
and to a bad exemplar (:class:`Evidence`), which is all the veto rule needs to judge it at any pair of
thresholds. :func:`choose_thresholds` searches that plane:

1. **Objective.** The F1 score of the decision that matters: the verdict GOOD against the label good. A
   bad-looking fragment that also matches a good exemplar is rejected only through the veto, so τ_bad is
   tuned by the same objective, exactly where it changes a verdict.
2. **Smallest change.** When the thresholds in force are already optimal on the data they are kept.
   Otherwise the optimal pair nearest to them is taken, and each threshold that has to move goes to the
   middle of the interval over which it stays optimal, as far as possible from the fragments on either side.

:func:`cross_validate` reports honestly how well that procedure generalizes: the labeled fragments are dealt
into K folds (stratified by label, seeded); each fold is judged with thresholds chosen on the other folds
only, and the figures are those of the pooled held-out verdicts. The thresholds written to the manifest are
then chosen on all the fragments.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND
from .checks import whole_number
from .errors import InputError, LibraryError, LimitError, ParameterError
from .library import Library
from .readers import FORMATS, read_notes
from .scoring import Scorer
from .verdict import Label, Outcome, reaches

Progress = Callable[[str], None]

#: Columns of a confusion table, and the verdict codes :func:`outcomes` returns (their indices).
OUTCOMES = (Outcome.GOOD, Outcome.UNMATCHED, Outcome.VETOED)
GOOD, UNMATCHED, VETOED = range(3)
#: Most folds a cross-validation may use.
MAX_FOLDS = 100
#: Similarities are compared on this many decimals when candidate thresholds are built (the engine picks
#: alignments on 5), so two fragments closer than that never get a threshold squeezed between them.
CANDIDATE_DECIMALS = 5


# --- the labeled set ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledSet:
    """N fragments a person has labeled: their notes (beats) and ``is_good`` (N,) bool."""

    notes: tuple[np.ndarray, ...]
    is_good: np.ndarray


def labeled_files(path: str | os.PathLike[str]) -> list[tuple[Path, Label]]:
    """The fragments of a labeled set and their labels, checked to exist.

    ``path`` is a folder holding ``good/`` and ``bad/`` folders (every file of a supported type inside them,
    at any depth, hidden ones left out) or a CSV of ``file,label`` rows, paths relative to the CSV, with an
    optional ``file,label`` header.
    """
    root = Path(path)
    if root.is_dir():
        files = []
        for label in Label:
            folder = root / label.value
            if not folder.is_dir():
                raise InputError(f"{root}: no {label.value}/ folder; a labeled folder holds good/ and bad/ folders of fragments")
            files += [
                (file, label)
                for file in sorted(folder.rglob("*"))
                if file.is_file() and file.suffix.lower() in FORMATS
                and not any(part.startswith(".") for part in file.relative_to(folder).parts)
            ]
    elif root.is_file():
        files = _csv_rows(root)
    else:
        raise InputError(f"{root}: no such file or directory")
    if not files:
        raise InputError(f"{root}: no labeled fragments (supported types: {' '.join(sorted(FORMATS))})")
    return files


def _csv_rows(path: Path) -> list[tuple[Path, Label]]:
    size = path.stat().st_size
    if size > defaults.MAX_FILE_BYTES:
        raise LimitError(f"{path}: {size} bytes exceeds the limit of {defaults.MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    rows = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            where = f"{path} line {reader.line_num}"
            if not rows and [c.lower() for c in cells] == ["file", "label"]:
                continue  # the header
            if len(cells) != 2:
                raise InputError(f"{where}: expected 'file,label', got {len(cells)} fields")
            name, label = cells
            if label.lower() not in {label.value for label in Label}:
                raise InputError(f"{where}: label={label!r} must be 'good' or 'bad'")
            file = path.parent / name
            if not file.is_file():
                raise InputError(f"{where}: {name}: no such file")
            rows.append((file, Label(label.lower())))
    except csv.Error as exc:
        raise InputError(f"{path} line {reader.line_num}: not valid CSV: {exc}") from None
    return rows


def read_labeled(path: str | os.PathLike[str], *, progress: Progress | None = None) -> LabeledSet:
    """Read every fragment of a labeled set (see :func:`labeled_files`); an unreadable one is an error naming it."""
    files = labeled_files(path)
    notes = []
    for i, (file, _) in enumerate(files):
        if progress:
            progress(f"reading labeled fragment {i + 1}/{len(files)}: {file.name}")
        notes.append(read_notes(file))
    return LabeledSet(tuple(notes), np.array([label is Label.GOOD for _, label in files]))


# --- evidence and verdicts -----------------------------------------------------------------------------------


def best_of(similarity: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(N,) best similarity of (N, K) ``similarity`` over the exemplars where ``columns`` (K,) is True; 0 where
    none is."""
    if not columns.any():
        return np.zeros(similarity.shape[0])
    return similarity[:, columns].max(axis=1)


@dataclass(frozen=True)
class Evidence:
    """What the veto rule needs of N scored fragments to judge them at any library thresholds.

    ``good`` and ``bad`` (N,) are the best similarities to good and bad exemplars that follow the library's
    thresholds; ``good_pinned`` and ``bad_pinned`` (N,) say whether an exemplar with its own threshold
    reached it, which no library threshold changes.
    """

    good: np.ndarray
    bad: np.ndarray
    good_pinned: np.ndarray
    bad_pinned: np.ndarray

    def subset(self, rows: np.ndarray) -> Evidence:
        return Evidence(self.good[rows], self.bad[rows], self.good_pinned[rows], self.bad_pinned[rows])


def evidence(similarity: np.ndarray, is_bad: np.ndarray, overrides: np.ndarray) -> Evidence:
    """Evidence from (N, K) similarities, (K,) ``is_bad`` and (K,) exemplar thresholds (NaN for none)."""
    free = np.isnan(overrides)
    with np.errstate(invalid="ignore"):
        own = reaches(similarity, overrides[None, :])  # False where NaN
    return Evidence(
        good=best_of(similarity, ~is_bad & free),
        bad=best_of(similarity, is_bad & free),
        good_pinned=(own & ~is_bad).any(axis=1),
        bad_pinned=(own & is_bad).any(axis=1),
    )


def outcomes(ev: Evidence, good_threshold: float, bad_threshold: float) -> np.ndarray:
    """(N,) verdict codes (GOOD, UNMATCHED, VETOED) by the veto rule at these library thresholds."""
    accepted = ev.good_pinned | reaches(ev.good, good_threshold)
    vetoed = ev.bad_pinned | reaches(ev.bad, bad_threshold)
    return np.where(vetoed, VETOED, np.where(accepted, GOOD, UNMATCHED))


@dataclass(frozen=True)
class Confusion:
    """Labeled fragments counted by label (rows: good, bad) and verdict (columns: :data:`OUTCOMES`)."""

    counts: np.ndarray  #: (2, 3) int

    @property
    def accepted_good(self) -> int:
        return int(self.counts[0, GOOD])

    @property
    def accepted_bad(self) -> int:
        return int(self.counts[1, GOOD])

    @property
    def precision(self) -> float | None:
        """Of the fragments judged GOOD, the fraction labeled good; None when none is judged GOOD."""
        accepted = self.accepted_good + self.accepted_bad
        return self.accepted_good / accepted if accepted else None

    @property
    def recall(self) -> float:
        """Of the fragments labeled good, the fraction judged GOOD."""
        return self.accepted_good / max(1, int(self.counts[0].sum()))

    @property
    def f1(self) -> float:
        missed = int(self.counts[0].sum()) - self.accepted_good
        return 2 * self.accepted_good / max(1, 2 * self.accepted_good + self.accepted_bad + missed)

    @property
    def accuracy(self) -> float:
        """Fragments labeled good judged GOOD, and labeled bad judged anything else, over all of them."""
        rejected_bad = int(self.counts[1].sum()) - self.accepted_bad
        return (self.accepted_good + rejected_bad) / max(1, int(self.counts.sum()))

    def vetoed(self, label: Label) -> float:
        """Of the fragments with this label, the fraction vetoed."""
        row = self.counts[0 if label is Label.GOOD else 1]
        return int(row[VETOED]) / max(1, int(row.sum()))


def confusion(is_good: np.ndarray, verdicts: np.ndarray) -> Confusion:
    counts = np.zeros((2, 3), dtype=np.int64)
    np.add.at(counts, (np.where(is_good, 0, 1), verdicts), 1)
    return Confusion(counts)


# --- choosing thresholds -------------------------------------------------------------------------------------


def _bounds(values: np.ndarray, max_candidates: int) -> np.ndarray:
    """Sorted distinct similarities, with 0 and 1, that delimit the candidate intervals of one threshold: the
    candidate between bounds i and i+1 stands for every threshold in (bound i, bound i+1]."""
    finite = np.clip(values[np.isfinite(values)], 0.0, 1.0)
    bounds = np.unique(np.round(np.concatenate([[0.0, 1.0], finite]), CANDIDATE_DECIMALS))
    if len(bounds) - 1 > max_candidates:
        bounds = bounds[np.unique(np.round(np.linspace(0, len(bounds) - 1, max_candidates + 1)).astype(int))]
    return bounds


def _runs(optimal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each cell of a 2-D bool array, the first and last index along axis 0 of the run of True it is in."""
    n = optimal.shape[0]
    index = np.arange(n)[:, None] * np.ones(optimal.shape[1], dtype=np.int64)
    first = np.maximum.accumulate(np.where(optimal, -1, index), axis=0) + 1  # after the last False at or above
    last = (n - 1) - (np.maximum.accumulate(np.where(optimal, -1, n - 1 - index)[::-1], axis=0)[::-1] + 1)
    return first, last


def _settle(current: float, low: float, high: float) -> float:
    """``current`` if it lies in (low, high], else a short decimal near the middle of that interval."""
    if low + defaults.TIE_TOLERANCE < current <= high:
        return current
    middle = (low + high) / 2
    for digits in range(2, CANDIDATE_DECIMALS + 2):
        short = round(middle, digits)
        if abs(short - middle) <= 0.1 * (high - low) and low < short <= high:
            return short
    return middle


def choose_thresholds(
    ev: Evidence,
    is_good: np.ndarray,
    *,
    current: tuple[float, float],
    max_candidates: int = defaults.MAX_CALIBRATION_CANDIDATES,
) -> tuple[float, float]:
    """(τ_good, τ_bad) maximizing the F1 of GOOD verdicts on these fragments, moved no further from
    ``current`` than the data demands (see the module docstring)."""
    if not is_good.any() or is_good.all():
        raise ParameterError("choosing thresholds needs fragments labeled good and fragments labeled bad")
    good = np.where(ev.good_pinned, np.inf, ev.good)
    bad = np.where(ev.bad_pinned, np.inf, ev.bad)
    g_bounds, b_bounds = _bounds(good, max_candidates), _bounds(bad, max_candidates)
    g_cand, b_cand = (g_bounds[:-1] + g_bounds[1:]) / 2, (b_bounds[:-1] + b_bounds[1:]) / 2
    # A fragment passes the good candidates below pg and is vetoed by the bad candidates below pb, so it is
    # judged GOOD at (i, j) exactly when i < pg and j >= pb: counts by (pg, pb) give every cell by cumsums.
    pg = np.searchsorted(g_cand, good, side="right")
    pb = np.searchsorted(b_cand, bad, side="right")
    accepted = []
    for rows in (is_good, ~is_good):
        table = np.zeros((len(g_cand) + 1, len(b_cand) + 1))
        np.add.at(table, (pg[rows], pb[rows]), 1)
        above = np.cumsum(table[::-1], axis=0)[::-1][1:]  # row i: fragments with pg > i
        accepted.append(np.cumsum(above, axis=1)[:, : len(b_cand)])  # column j: and pb <= j
    true_pos, false_pos = accepted
    f1 = 2 * true_pos / (true_pos + false_pos + is_good.sum())
    optimal = f1 >= f1.max() - 1e-12

    tau_good, tau_bad = current
    i = int(np.clip(np.searchsorted(g_bounds, tau_good, side="left") - 1, 0, len(g_cand) - 1))
    j = int(np.clip(np.searchsorted(b_bounds, tau_bad, side="left") - 1, 0, len(b_cand) - 1))
    if not optimal[i, j]:
        distance = np.abs(g_cand - tau_good)[:, None] + np.abs(b_cand - tau_bad)[None, :]
        i, j = np.unravel_index(int(np.argmin(np.where(optimal, distance, np.inf))), optimal.shape)
    first, last = _runs(optimal)
    tau_good = _settle(tau_good, g_bounds[first[i, j]], g_bounds[last[i, j] + 1])
    i = int(np.clip(np.searchsorted(g_bounds, tau_good, side="left") - 1, 0, len(g_cand) - 1))
    first, last = _runs(optimal.T)
    tau_bad = _settle(tau_bad, b_bounds[first[j, i]], b_bounds[last[j, i] + 1])
    return float(tau_good), float(tau_bad)


# --- cross-validation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The thresholds in force and the ones chosen, with how each judges the labeled fragments."""

    fragments: int
    good: int  #: fragments labeled good
    folds: int
    before_thresholds: tuple[float, float]  #: (τ_good, τ_bad) in force
    before: Confusion  #: the labeled fragments judged at the thresholds in force
    after: Confusion  #: each fragment judged at thresholds chosen on the other folds only
    fold_thresholds: tuple[tuple[float, float], ...]  #: chosen on each fold's training part
    chosen: tuple[float, float]  #: chosen on every fragment: what --write writes
    in_sample: Confusion  #: the fragments judged at ``chosen``, which saw them (optimistic)


def fold_of(is_good: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) fold index of each fragment: each label shuffled (seeded) and dealt round the folds in turn."""
    fold = np.empty(is_good.size, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for label in (True, False):
        members = rng.permutation(np.flatnonzero(is_good == label))
        fold[members] = np.arange(members.size) % folds
    return fold


def cross_validate(
    ev: Evidence,
    is_good: np.ndarray,
    *,
    current: tuple[float, float],
    folds: int = defaults.CALIBRATION_FOLDS,
    seed: int = defaults.CALIBRATION_SEED,
) -> Calibration:
    """Choose thresholds by K-fold cross-validation (see the module docstring)."""
    n_good, n_bad = int(is_good.sum()), int((~is_good).sum())
    folds = whole_number(folds, "folds", at_least=2, at_most=MAX_FOLDS)
    if min(n_good, n_bad) < folds:
        raise ParameterError(
            f"folds={folds} needs at least {folds} fragments labeled good and {folds} labeled bad; "
            f"the labeled set has {n_good} good and {n_bad} bad"
        )
    fold = fold_of(is_good, folds, seed)
    held_out = np.empty(is_good.size, dtype=np.int64)
    fold_thresholds = []
    for f in range(folds):
        train, test = fold != f, fold == f
        tau = choose_thresholds(ev.subset(train), is_good[train], current=current)
        fold_thresholds.append(tau)
        held_out[test] = outcomes(ev.subset(test), *tau)
    chosen = choose_thresholds(ev, is_good, current=current)
    return Calibration(
        fragments=is_good.size,
        good=n_good,
        folds=folds,
        before_thresholds=current,
        before=confusion(is_good, outcomes(ev, *current)),
        after=confusion(is_good, held_out),
        fold_thresholds=tuple(fold_thresholds),
        chosen=chosen,
        in_sample=confusion(is_good, outcomes(ev, *chosen)),
    )


def calibrate(
    library: Library,
    labeled: str | os.PathLike[str],
    *,
    folds: int = defaults.CALIBRATION_FOLDS,
    seed: int = defaults.CALIBRATION_SEED,
    transpose_range: int = defaults.TRANSPOSE_RANGE,
    stretches: Sequence[float] = defaults.STRETCHES,
    backend: str = DEFAULT_BACKEND,
    progress: Progress | None = None,
) -> Calibration:
    """Read the labeled set at ``labeled``, score every fragment once against ``library`` and choose its
    thresholds by cross-validation. Nothing is written: pass ``chosen`` to :meth:`Library.set_thresholds`."""
    whole_number(folds, "folds", at_least=2, at_most=MAX_FOLDS)  # before any file is read
    if not any(e.label is Label.GOOD for e in library.exemplars):
        raise LibraryError(f"{library.path}: the library has no good exemplars, so no fragment can be judged GOOD")
    fragments = read_labeled(labeled, progress=progress)
    scorer = Scorer(library, backend=backend, progress=progress)
    if progress:
        progress(f"scoring {len(fragments.notes)} labeled fragments")
    best = scorer.similarities(fragments.notes, transpose_range=transpose_range, stretches=stretches)
    config = library.config
    return cross_validate(
        evidence(best.similarity, scorer.is_bad, scorer.overrides),
        fragments.is_good,
        current=(config.good_threshold, config.bad_threshold),
        folds=folds,
        seed=seed,
    )


# --- the report ----------------------------------------------------------------------------------------------


def report_lines(result: Calibration) -> list[str]:
    """The before/after table and confusion matrices, as printed by ``rollmatch library calibrate``."""

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def spread(values: list[float]) -> str:
        return f"{min(values):g}" if min(values) == max(values) else f"{min(values):g}-{max(values):g}"

    goods, bads = ([t[i] for t in result.fold_thresholds] for i in (0, 1))
    rows = [
        ("before (manifest)", f"{result.before_thresholds[0]:g}", f"{result.before_thresholds[1]:g}", result.before),
        (f"after ({result.folds}-fold CV)", spread(goods), spread(bads), result.after),
        ("chosen, on all data", f"{result.chosen[0]:g}", f"{result.chosen[1]:g}", result.in_sample),
    ]
    lines = [
        f"{result.fragments} labeled fragments: {result.good} good, {result.fragments - result.good} bad",
        "",
        (f"{'':<22}{'τ_good':>12}{'τ_bad':>12}{'accuracy':>10}{'precision':>11}{'recall':>8}{'F1':>7}"
         f"{'bad vetoed':>12}{'good vetoed':>13}"),
    ]
    for name, tau_good, tau_bad, c in rows:
        lines.append(
            f"{name:<22}{tau_good:>12}{tau_bad:>12}{share(c.accuracy):>10}{share(c.precision):>11}{share(c.recall):>8}"
            f"{c.f1:>7.3f}{share(c.vetoed(Label.BAD)):>12}{share(c.vetoed(Label.GOOD)):>13}"
        )
    lines += ["", f"{'confusion':<22}{'labeled':<9}" + "".join(f"{o.value:>11}" for o in OUTCOMES)]
    for name, _, _, c in rows:
        for r, label in enumerate(Label):
            lines.append(f"{name if r == 0 else '':<22}{label.value:<9}" + "".join(f"{int(n):>11}" for n in c.counts[r]))
    lines += ["", ("The after row judges each fragment with thresholds chosen without it; the last row's figures "
                   "come from the data the thresholds were chosen on.")]
    return lines
