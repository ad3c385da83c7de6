"""Choose a library's thresholds from fragments a person has labeled good, bad or other.

A labeled set holds three kinds of fragment, each with what the verdict should be:

- ``good``: should be judged GOOD;
- ``bad``: should be VETOED (a bad fragment that merely fails to be good is not enough: a search loop would
  still climb towards it);
- ``other``: anything but GOOD (unrelated music, near misses, material the library should not praise).

Every labeled fragment is scored once against the library; what is kept of it is its best similarity to a good
exemplar that covers enough of it to count, and to a bad exemplar (:class:`Evidence`), which is all the veto
rule needs to judge it at any pair of thresholds. :func:`choose_thresholds` searches that plane:

1. **Objective.** The balanced success rate: the mean, over the kinds present, of the share of each kind judged
   as it should be (good as GOOD, bad as VETOED, other as not GOOD). Each kind weighs the same whatever its
   size, and the veto counts: a τ_bad that lets bad fragments through loses as much as a τ_good that lets good
   ones go. Maximizing the F1 of GOOD alone, as earlier versions did, is indifferent to vetoes and raises τ_bad
   freely.
2. **Smallest change.** When the thresholds in force are already optimal on the data they are kept.
   Otherwise the optimal pair nearest to them is taken, and each threshold that has to move goes to the
   middle of the interval over which it stays optimal, as far as possible from the fragments on either side.

:func:`cross_validate` reports honestly how well that procedure generalizes: the labeled fragments are dealt
into K folds (stratified by label, seeded); each fold is judged with thresholds chosen on the other folds
only, and the figures are those of the pooled held-out verdicts. The thresholds written to the manifest are
then chosen on all the fragments. :func:`calibrate` also runs the library check (:mod:`rollmatch.lint`) at the
chosen thresholds, so that what would be written is never worse than what is in force without a warning.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND
from .checks import whole_number
from .engine import BestMatches, SearchSpace
from .errors import InputError, LibraryError, LimitError, ParameterError
from .library import Library
from .lint import Finding, check_library
from .progress import Show, progress_bar
from .readers import FORMATS, read_notes
from .scoring import Scorer
from .verdict import Label, Outcome, reaches

#: Columns of a confusion table, and the verdict codes :func:`outcomes` returns (their indices).
OUTCOMES = (Outcome.GOOD, Outcome.UNMATCHED, Outcome.VETOED)
GOOD, UNMATCHED, VETOED = range(3)
#: The kinds of labeled fragment, and their codes (their indices): what each should be judged is in the module.
KINDS = (Label.GOOD, Label.BAD, "other")
GOOD_KIND, BAD_KIND, OTHER_KIND = range(3)


# --- the labeled set ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledSet:
    """N fragments a person has labeled: their notes (beats) and ``kinds`` (N,) codes of :data:`KINDS`."""

    notes: tuple[np.ndarray, ...]
    kinds: np.ndarray


def labeled_files(path: str | os.PathLike[str]) -> list[tuple[Path, int]]:
    """The fragments of a labeled set and their kind codes (:data:`KINDS`), checked to exist.

    ``path`` is a folder holding ``good/`` and ``bad/`` folders and optionally ``other/`` (every file of a
    supported type inside them, at any depth, hidden ones left out) or a CSV of ``file,label`` rows with label
    good, bad or other, paths relative to the CSV, with an optional ``file,label`` header.
    """
    root = Path(path)
    if root.is_dir():
        files = []
        for code, kind in enumerate(KINDS):
            folder = root / kind
            if not folder.is_dir():
                if kind == "other":
                    continue
                raise InputError(
                    f"{root}: no {kind}/ folder; a labeled folder holds good/ and bad/ folders of fragments, and "
                    "optionally other/"
                )
            files += [
                (file, code)
                for file in sorted(folder.rglob("*"))
                if file.is_file()
                and file.suffix.lower() in FORMATS
                and not any(part.startswith(".") for part in file.relative_to(folder).parts)
            ]
    elif root.is_file():
        files = _csv_rows(root)
    else:
        raise InputError(f"{root}: no such file or directory")
    if not files:
        raise InputError(f"{root}: no labeled fragments (supported types: {' '.join(sorted(FORMATS))})")
    return files


def _csv_rows(path: Path) -> list[tuple[Path, int]]:
    size = path.stat().st_size
    if size > defaults.MAX_FILE_BYTES:
        raise LimitError(f"{path}: {size} bytes exceeds the limit of {defaults.MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    rows: list[tuple[Path, int]] = []
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
                raise InputError(f"{where}: expected 'file,label', got {len(cells)} fields: {','.join(row)!r}")
            name, label = cells
            if label.lower() not in KINDS:
                raise InputError(f"{where}: label={label!r} must be 'good', 'bad' or 'other'")
            file = path.parent / name
            if not file.is_file():
                raise InputError(f"{where}: {name}: no such file")
            rows.append((file, KINDS.index(label.lower())))
    except csv.Error as exc:
        raise InputError(f"{path} line {reader.line_num}: not valid CSV: {exc}") from None
    return rows


def read_labeled(path: str | os.PathLike[str], *, progress: Show = False) -> LabeledSet:
    """Read every fragment of a labeled set (see :func:`labeled_files`); an unreadable one is an error naming it."""
    files = labeled_files(path)
    notes = []
    for file, _ in progress_bar(files, desc="reading labeled fragments", show=progress):
        notes.append(read_notes(file))
    return LabeledSet(tuple(notes), np.array([code for _, code in files], dtype=np.int64))


# --- evidence and verdicts -----------------------------------------------------------------------------------


def best_of(similarity: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(N,) best similarity of (N, K) ``similarity`` over the exemplars where ``columns`` (K,) or (N, K) is True;
    0 where none is."""
    return np.where(columns, similarity, 0.0).max(axis=1, initial=0.0)


@dataclass(frozen=True)
class Evidence:
    """What the veto rule needs of N scored fragments to judge them at any library thresholds.

    ``good`` and ``bad`` (N,) are the best similarities to good and bad exemplars that follow the library's
    thresholds, the good ones only where they cover enough of the fragment to count for GOOD; ``good_pinned``
    and ``bad_pinned`` (N,) say whether an exemplar with its own threshold counts for GOOD or vetoes, which no
    library threshold changes.
    """

    good: np.ndarray
    bad: np.ndarray
    good_pinned: np.ndarray
    bad_pinned: np.ndarray

    def subset(self, rows: np.ndarray) -> Evidence:
        return Evidence(self.good[rows], self.bad[rows], self.good_pinned[rows], self.bad_pinned[rows])


def evidence(best: BestMatches, is_bad: np.ndarray, overrides: np.ndarray, *, min_coverage: float) -> Evidence:
    """Evidence from (N, K) best matches, (K,) ``is_bad``, (K,) exemplar thresholds (NaN for none) and the
    coverage a good match needs."""
    free = np.isnan(overrides)[None, :]
    covers = reaches(best.coverage, min_coverage)
    with np.errstate(invalid="ignore"):
        own = reaches(best.similarity, overrides[None, :])  # False where NaN
    return Evidence(
        good=best_of(best.similarity, ~is_bad[None, :] & free & covers),
        bad=best_of(best.similarity, is_bad[None, :] & free),
        good_pinned=(own & ~is_bad & covers).any(axis=1),
        bad_pinned=(own & is_bad).any(axis=1),
    )


def outcomes(ev: Evidence, good_threshold: float, bad_threshold: float) -> np.ndarray:
    """(N,) verdict codes (GOOD, UNMATCHED, VETOED) by the veto rule at these library thresholds."""
    accepted = ev.good_pinned | reaches(ev.good, good_threshold)
    vetoed = ev.bad_pinned | reaches(ev.bad, bad_threshold)
    return np.where(vetoed, VETOED, np.where(accepted, GOOD, UNMATCHED))


@dataclass(frozen=True)
class Confusion:
    """Labeled fragments counted by kind (rows: :data:`KINDS`) and verdict (columns: :data:`OUTCOMES`)."""

    counts: np.ndarray  #: (3, 3) int

    def size(self, kind: int) -> int:
        return int(self.counts[kind].sum())

    def success(self, kind: int) -> float | None:
        """The share of one kind judged as it should be (good: GOOD; bad: VETOED; other: not GOOD); None when
        the set holds none of that kind."""
        if not self.size(kind):
            return None
        right = {
            GOOD_KIND: self.counts[GOOD_KIND, GOOD],
            BAD_KIND: self.counts[BAD_KIND, VETOED],
            OTHER_KIND: self.size(OTHER_KIND) - self.counts[OTHER_KIND, GOOD],
        }[kind]
        return int(right) / self.size(kind)

    @property
    def balanced(self) -> float:
        """The objective: the mean of :meth:`success` over the kinds present."""
        shares = [s for s in map(self.success, range(len(KINDS))) if s is not None]
        return sum(shares) / len(shares)

    @property
    def precision(self) -> float | None:
        """Of the fragments judged GOOD, the fraction labeled good; None when none is judged GOOD."""
        accepted = int(self.counts[:, GOOD].sum())
        return int(self.counts[GOOD_KIND, GOOD]) / accepted if accepted else None

    def vetoed(self, kind: int) -> float | None:
        """Of the fragments of one kind, the fraction vetoed; None when there are none."""
        return int(self.counts[kind, VETOED]) / self.size(kind) if self.size(kind) else None


def confusion(kinds: np.ndarray, verdicts: np.ndarray) -> Confusion:
    counts = np.zeros((len(KINDS), len(OUTCOMES)), dtype=np.int64)
    np.add.at(counts, (kinds, verdicts), 1)
    return Confusion(counts)


# --- choosing thresholds -------------------------------------------------------------------------------------


def _bounds(values: np.ndarray, max_candidates: int) -> np.ndarray:
    """Sorted distinct similarities, with 0 and 1, that delimit the candidate intervals of one threshold: the
    candidate between bounds i and i+1 stands for every threshold in (bound i, bound i+1]."""
    finite = np.clip(values[np.isfinite(values)], 0.0, 1.0)
    bounds = np.unique(np.round(np.concatenate([[0.0, 1.0], finite]), defaults.CANDIDATE_DECIMALS))
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
    for digits in range(2, defaults.CANDIDATE_DECIMALS + 2):
        short = round(middle, digits)
        if abs(short - middle) <= 0.1 * (high - low) and low < short <= high:
            return short
    return middle


def _kind_counts(kinds: np.ndarray) -> str:
    return ", ".join(f"{int((kinds == k).sum())} {kind}" for k, kind in enumerate(KINDS))


def _check_kinds(kinds: np.ndarray) -> None:
    if not (kinds == GOOD_KIND).any() or (kinds == GOOD_KIND).all():
        raise ParameterError(
            f"choosing thresholds needs fragments labeled good and fragments labeled bad or other; "
            f"the labeled set has {_kind_counts(kinds)}"
        )


def choose_thresholds(
    ev: Evidence,
    kinds: np.ndarray,
    *,
    current: tuple[float, float],
    max_candidates: int = defaults.MAX_CALIBRATION_CANDIDATES,
) -> tuple[float, float]:
    """(τ_good, τ_bad) maximizing the balanced success rate on these fragments (``kinds`` (N,) codes of
    :data:`KINDS`), moved no further from ``current`` than the data demands (see the module docstring)."""
    _check_kinds(kinds)
    good = np.where(ev.good_pinned, np.inf, ev.good)
    bad = np.where(ev.bad_pinned, np.inf, ev.bad)
    g_bounds, b_bounds = _bounds(good, max_candidates), _bounds(bad, max_candidates)
    g_cand, b_cand = (g_bounds[:-1] + g_bounds[1:]) / 2, (b_bounds[:-1] + b_bounds[1:]) / 2
    # A fragment passes the good candidates below pg and is vetoed by the bad candidates below pb, so it is
    # judged GOOD at (i, j) exactly when i < pg and j >= pb, and VETOED when j < pb: counts by (pg, pb) give
    # every cell by cumsums.
    pg = np.searchsorted(g_cand, good, side="right")
    pb = np.searchsorted(b_cand, bad, side="right")
    shares = []
    for kind in range(len(KINDS)):
        rows = kinds == kind
        if not rows.any():
            continue
        table = np.zeros((len(g_cand) + 1, len(b_cand) + 1))
        np.add.at(table, (pg[rows], pb[rows]), 1)
        above = np.cumsum(table[::-1], axis=0)[::-1][1:]  # row i: fragments with pg > i
        accepted = np.cumsum(above, axis=1)[:, : len(b_cand)]  # column j: and pb <= j
        vetoed = (pb[rows][None, :] > np.arange(len(b_cand))[:, None]).sum(axis=1)[None, :]  # column j: pb > j
        right = {
            GOOD_KIND: accepted,
            BAD_KIND: np.broadcast_to(vetoed, accepted.shape),
            OTHER_KIND: rows.sum() - accepted,
        }[kind]
        shares.append(right / rows.sum())
    objective = np.mean(shares, axis=0)
    optimal = objective >= objective.max() - 1e-12

    def optimal_pair(taus: tuple[float, float]) -> bool:
        """On the verdicts themselves: the grid rounds similarities, and a threshold in force may sit within
        that rounding of one."""
        return confusion(kinds, outcomes(ev, *taus)).balanced >= objective.max() - 1e-12

    if optimal_pair(current):
        return current
    tau_good, tau_bad = current
    i = int(np.clip(np.searchsorted(g_bounds, tau_good, side="left") - 1, 0, len(g_cand) - 1))
    j = int(np.clip(np.searchsorted(b_bounds, tau_bad, side="left") - 1, 0, len(b_cand) - 1))
    if not optimal[i, j]:
        distance = np.abs(g_cand - tau_good)[:, None] + np.abs(b_cand - tau_bad)[None, :]
        i, j = (int(k) for k in np.unravel_index(int(np.argmin(np.where(optimal, distance, np.inf))), optimal.shape))
    first, last = _runs(optimal)
    good_run = (g_bounds[first[i, j]], g_bounds[last[i, j] + 1])
    tau_good = _settle(tau_good, *good_run)
    i = int(np.clip(np.searchsorted(g_bounds, tau_good, side="left") - 1, 0, len(g_cand) - 1))
    first, last = _runs(optimal.T)
    bad_run = (b_bounds[first[j, i]], b_bounds[last[j, i] + 1])
    tau_bad = _settle(tau_bad, *bad_run)
    if not optimal_pair((tau_good, tau_bad)):  # a kept threshold sat within the rounding of a similarity
        middles = (_settle(math.nan, *good_run), _settle(math.nan, *bad_run))
        options = ((middles[0], tau_bad), (tau_good, middles[1]), middles)
        tau_good, tau_bad = next((o for o in options if optimal_pair(o)), middles)
    return float(tau_good), float(tau_bad)


# --- cross-validation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The thresholds in force and the ones chosen, with how each judges the labeled fragments."""

    fragments: int
    kinds: tuple[int, ...]  #: how many fragments of each kind of :data:`KINDS`
    folds: int
    before_thresholds: tuple[float, float]  #: (τ_good, τ_bad) in force
    before: Confusion  #: the labeled fragments judged at the thresholds in force
    after: Confusion  #: each fragment judged at thresholds chosen on the other folds only
    fold_thresholds: tuple[tuple[float, float], ...]  #: chosen on each fold's training part
    chosen: tuple[float, float]  #: chosen on every fragment: what --write writes
    in_sample: Confusion  #: the fragments judged at ``chosen``, which saw them (optimistic)
    #: What the library check finds at the chosen thresholds and not at those in force (see :func:`calibrate`).
    new_findings: tuple[Finding, ...] = ()


def fold_of(kinds: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) fold index of each fragment: each kind shuffled (seeded) and dealt round the folds in turn."""
    fold = np.empty(kinds.size, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for kind in range(len(KINDS)):
        members = rng.permutation(np.flatnonzero(kinds == kind))
        fold[members] = np.arange(members.size) % folds
    return fold


def cross_validate(
    ev: Evidence,
    kinds: np.ndarray,
    *,
    current: tuple[float, float],
    folds: int = defaults.CALIBRATION_FOLDS,
    seed: int = defaults.CALIBRATION_SEED,
) -> Calibration:
    """Choose thresholds by K-fold cross-validation (see the module docstring)."""
    folds = whole_number(folds, "folds", at_least=2, at_most=defaults.MAX_CALIBRATION_FOLDS)
    _check_kinds(kinds)
    counts = tuple(int((kinds == k).sum()) for k in range(len(KINDS)))
    if any(0 < n < folds for n in counts):
        have = ", ".join(f"{n} {kind}" for kind, n in zip(KINDS, counts, strict=True) if n)
        raise ParameterError(
            f"folds={folds} needs at least {folds} fragments of each kind labeled; the labeled set has {have}"
        )
    fold = fold_of(kinds, folds, seed)
    held_out = np.empty(kinds.size, dtype=np.int64)
    fold_thresholds = []
    for f in range(folds):
        train, test = fold != f, fold == f
        tau = choose_thresholds(ev.subset(train), kinds[train], current=current)
        fold_thresholds.append(tau)
        held_out[test] = outcomes(ev.subset(test), *tau)
    chosen = choose_thresholds(ev, kinds, current=current)
    return Calibration(
        fragments=kinds.size,
        kinds=counts,
        folds=folds,
        before_thresholds=current,
        before=confusion(kinds, outcomes(ev, *current)),
        after=confusion(kinds, held_out),
        fold_thresholds=tuple(fold_thresholds),
        chosen=chosen,
        in_sample=confusion(kinds, outcomes(ev, *chosen)),
    )


def calibrate(
    library: Library,
    labeled: str | os.PathLike[str],
    *,
    folds: int = defaults.CALIBRATION_FOLDS,
    seed: int = defaults.CALIBRATION_SEED,
    space: SearchSpace | None = None,
    backend: str = DEFAULT_BACKEND,
    progress: Show = False,
) -> Calibration:
    """Read the labeled set at ``labeled``, score every fragment once against ``library`` and choose its
    thresholds by cross-validation, in ``space`` (default: the library's). Nothing is written: pass ``chosen``
    to :meth:`Library.set_thresholds`.

    The library check (:func:`rollmatch.lint.check_library`) then runs at the thresholds in force and at the
    chosen ones; what it finds only at the chosen ones is ``new_findings``: a degenerate probe judged GOOD, a
    good exemplar vetoed, an exemplar that matches noise.
    """
    whole_number(folds, "folds", at_least=2, at_most=defaults.MAX_CALIBRATION_FOLDS)  # before any file is read
    if not any(e.label is Label.GOOD for e in library.exemplars):
        raise LibraryError(f"{library.path}: the library has no good exemplars, so no fragment can be judged GOOD")
    fragments = read_labeled(labeled, progress=progress)
    scorer = Scorer(library, backend=backend, progress=progress)
    with progress_bar(desc=f"scoring {len(fragments.notes)} labeled fragments", total=1, show=progress) as bar:
        best = scorer.similarities(fragments.notes, space)
        bar.update()
    config = library.config
    result = cross_validate(
        evidence(best, scorer.is_bad, scorer.overrides, min_coverage=config.min_coverage),
        fragments.kinds,
        current=(config.good_threshold, config.bad_threshold),
        folds=folds,
        seed=seed,
    )
    if result.chosen == result.before_thresholds:
        return result
    settings: dict[str, Any] = {"space": space, "backend": backend, "progress": progress}
    in_force = {f.key for f in check_library(library, **settings)}
    good, bad = result.chosen
    at_chosen = check_library(
        replace(library, config=replace(config, good_threshold=good, bad_threshold=bad)), **settings
    )
    return replace(result, new_findings=tuple(f for f in at_chosen if f.key not in in_force))


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
    present = [k for k in range(len(KINDS)) if result.kinds[k]]
    counted = ", ".join(f"{result.kinds[k]} {KINDS[k]}" for k in present)
    lines = [
        f"{result.fragments} labeled fragments: {counted}",
        "",
        (
            f"{'':<22}{'τ_good':>12}{'τ_bad':>12}{'balanced':>10}{'good GOOD':>11}{'bad VETOED':>12}"
            f"{'other not GOOD':>16}{'precision':>11}{'good vetoed':>13}"
        ),
    ]
    for name, tau_good, tau_bad, c in rows:
        lines.append(
            f"{name:<22}{tau_good:>12}{tau_bad:>12}{c.balanced:>10.1%}{share(c.success(GOOD_KIND)):>11}"
            f"{share(c.success(BAD_KIND)):>12}{share(c.success(OTHER_KIND)):>16}{share(c.precision):>11}"
            f"{share(c.vetoed(GOOD_KIND)):>13}"
        )
    lines += ["", f"{'confusion':<22}{'labeled':<9}" + "".join(f"{o.value:>11}" for o in OUTCOMES)]
    for name, _, _, c in rows:
        for r, k in enumerate(present):
            lines.append(f"{name if r == 0 else '':<22}{KINDS[k]:<9}" + "".join(f"{int(n):>11}" for n in c.counts[k]))
    lines += [
        "",
        (
            "good should be GOOD, bad VETOED and other anything but GOOD; 'balanced' is the mean of those "
            "shares, the objective. The after row judges each fragment with thresholds chosen without it; the "
            "last row's figures come from the data the thresholds were chosen on."
        ),
    ]
    return lines
