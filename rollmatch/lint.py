"""Lint an exemplar library: what ``rollmatch library check`` reports.

Each problem is a :class:`Finding` with a stable ``code``; :data:`CODES` lists them in the order findings are
listed. The lint never stops at a broken exemplar: files are loaded one exemplar at a time
(:meth:`Library.exemplar_notes`), and the exemplars that load with at least two notes are then compared with
each other and with random material in one engine call.

**Random material.** ``random_count`` fragments of ``random_beats`` beats, seeded, in four voices with the
ranges of a choir (bass E2-D4, tenor C3-G4, alto G3-D5, soprano C4-A5). Each voice sounds all the time, in
eighths, quarters and halves, and moves mostly by step with some thirds and fourths, so the material has the
register and density of real four-part music and no musical sense. An exemplar **matches random material**
when it reaches its own threshold on at least ``random_match_fraction`` of these fragments: a good exemplar
that does would pass noise as GOOD, a bad one would veto noise. Because similarity is normalized by the
energy under the exemplar's box, a large dense exemplar never does; the ones that do are small and dense
(a cluster of a few adjacent semitones, a lone chord or interval), which any busy texture fills.

**Degenerate probes.** The fixed, seeded probes of :mod:`rollmatch.probes` (held notes and chords, repeated
notes, runs, arpeggios, random walks in a key, and each good exemplar's lone voices, rhythm on one pitch and
held opening chord) are judged as the scorer would judge them; every probe judged GOOD is a finding naming the
exemplar it matched, because a search loop would find that loophole first.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .backend import DEFAULT_BACKEND, array_module
from .checks import number, whole_number
from .engine import BestMatches, SearchSpace, TemplateBank, match
from .errors import EmptyInputError, LibraryError
from .library import Library, label_arrays
from .manifest import Exemplar
from .notes import NOTE_DTYPE, sort_notes
from .probes import Probe, degenerate_probes
from .progress import Show, progress_bar
from .verdict import Label, counting, fraction_text, percent_text, reaches

#: Every finding code, in the order findings are listed, with what it means.
CODES: dict[str, str] = {
    "library-unreadable": "the directory holds no readable manifest, so nothing else could be checked",
    "file-missing": "an exemplar's file does not exist",
    "file-unreadable": "an exemplar's file cannot be read or parsed",
    "exemplar-empty": "an exemplar's file or selection (tracks, beats) holds no notes",
    "exemplar-single-note": "an exemplar holds one note, which matches any fragment sounding that note alone",
    "id-clash": "ids that differ only in case or punctuation",
    "file-clash": "exemplar files whose paths differ only in case, one file on case-insensitive file systems",
    "good-vetoed": "a good exemplar, scored as a fragment, would be vetoed by a bad exemplar",
    "bad-matches-good": "a bad exemplar, scored as a fragment, reaches a good exemplar's threshold",
    "near-duplicate": "two exemplars that each match the other at or above the near-duplicate similarity",
    "matches-random": "an exemplar that reaches its threshold on too many random fragments",
    "probe-good": "a degenerate probe (a held note, a lone voice, ...) is judged GOOD",
}

#: (lowest, highest) MIDI pitch of each voice of the random material: bass, tenor, alto, soprano.
RANDOM_VOICE_RANGES = ((40, 62), (48, 67), (55, 74), (60, 81))
#: Note lengths (beats) of the random material, and how often each is drawn.
RANDOM_DURATIONS = ((0.5, 0.3), (1.0, 0.5), (2.0, 0.2))
#: Melodic intervals (semitones) between consecutive notes of a random voice, and how often each is drawn.
RANDOM_INTERVALS = ((0, 0.10), (1, 0.15), (2, 0.15), (3, 0.07), (4, 0.05), (5, 0.03))


@dataclass(frozen=True)
class Finding:
    """One problem found in a library: a stable ``code`` (e.g. 'near-duplicate'), the exemplar ids it
    concerns (may be empty for library-wide problems), a one-line ``message`` for people, and for a probe the
    probe's name (``subject``), so that two findings on one exemplar stay apart."""

    code: str
    message: str
    exemplars: tuple[str, ...] = ()
    subject: str = ""

    @property
    def key(self) -> tuple[str, tuple[str, ...], str]:
        """What the finding is about, whatever the figures in its message: equal for the same problem found
        at other thresholds."""
        return self.code, self.exemplars, self.subject

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "exemplars": list(self.exemplars)}
        if self.subject:
            out["subject"] = self.subject
        return out


def random_material(count: int, *, beats: float, seed: int) -> list[np.ndarray]:
    """``count`` seeded random four-voice fragments of ``beats`` beats (see the module docstring)."""
    rng = np.random.default_rng(seed)
    lengths, length_p = zip(*RANDOM_DURATIONS, strict=True)
    steps = np.array([s for s, _ in RANDOM_INTERVALS] + [-s for s, _ in RANDOM_INTERVALS if s])
    step_p = np.array([p for _, p in RANDOM_INTERVALS] + [p for s, p in RANDOM_INTERVALS if s])
    fragments = []
    for _ in range(count):
        rows: list[tuple[int, float, float, int]] = []
        for lo, hi in RANDOM_VOICE_RANGES:
            pitch, start = int(rng.integers(lo, hi + 1)), 0.0
            while start < beats:
                end = min(beats, start + float(rng.choice(lengths, p=length_p)))
                rows.append((pitch, start, end, defaults.VELOCITY))
                pitch += int(rng.choice(steps, p=step_p / step_p.sum()))
                pitch = 2 * lo - pitch if pitch < lo else 2 * hi - pitch if pitch > hi else pitch  # reflect
                start = end
        fragments.append(sort_notes(np.array(rows, dtype=NOTE_DTYPE)))
    return fragments


def check_directory(path: str | os.PathLike[str], **options: Any) -> list[Finding]:
    """:func:`check_library` on the library at ``path``; a directory without a readable manifest gives one
    'library-unreadable' finding instead of an error. ``options`` are those of :func:`check_library`."""
    try:
        library = Library.open(path)
    except LibraryError as exc:
        return [Finding("library-unreadable", str(exc))]
    return check_library(library, **options)


def check_library(
    library: Library,
    *,
    near_duplicate_similarity: float = defaults.NEAR_DUPLICATE_SIMILARITY,
    random_count: int = defaults.RANDOM_FRAGMENTS,
    random_beats: float = defaults.RANDOM_FRAGMENT_BEATS,
    random_match_fraction: float = defaults.RANDOM_MATCH_FRACTION,
    seed: int = defaults.RANDOM_SEED,
    space: SearchSpace | None = None,
    backend: str = DEFAULT_BACKEND,
    progress: Show = False,
) -> list[Finding]:
    """Every problem found in ``library``, in the order of :data:`CODES`; an empty list when it is clean.

    Exemplars are judged as the scorer would judge them: each exemplar, as a fragment, is matched against
    every exemplar in its mode with the library's thresholds (an exemplar's own threshold wins) and coverage
    requirement, in ``space`` (default: the library's).
    """
    near_duplicate_similarity = number(near_duplicate_similarity, "near_duplicate_similarity", above=0, at_most=1)
    random_count = whole_number(random_count, "random_count", at_least=0, at_most=defaults.MAX_RANDOM_FRAGMENTS)
    random_beats = number(random_beats, "random_beats", above=0, at_most=defaults.MAX_BEATS_PER_FRAGMENT)
    random_match_fraction = number(random_match_fraction, "random_match_fraction", above=0, at_most=1)
    seed = whole_number(seed, "seed", at_least=0, at_most=2**63 - 1)
    space = library.config.space if space is None else space
    xp = array_module(backend)

    findings = _clashes(library.exemplars)
    usable: list[tuple[Exemplar, np.ndarray]] = []
    for exemplar in progress_bar(library.exemplars, desc="checking: reading exemplars", show=progress):
        loaded = _load(library, exemplar)
        if isinstance(loaded, Finding):
            findings.append(loaded)
        else:
            usable.append((exemplar, loaded))
    if usable:
        noise = random_material(random_count, beats=random_beats, seed=seed)
        probes = degenerate_probes([(e.id, notes) for e, notes in usable if e.label is Label.GOOD])
        config = library.config
        bank = TemplateBank([notes for _, notes in usable], space, modes=[library.mode_of(e) for e, _ in usable], xp=xp)
        material = [notes for _, notes in usable] + noise + [p.notes for p in probes]
        matching = f"checking: matching {len(usable)} exemplars against each other and {random_count} random fragments"
        with progress_bar(desc=matching, total=1, show=progress) as bar:
            best = match(material, bank)
            bar.update()
        exemplars = [e for e, _ in usable]
        is_bad, overrides = label_arrays(exemplars)
        thresholds = config.thresholds.for_exemplars(is_bad, overrides)
        counts = counting(best, is_bad, thresholds, min_coverage=config.min_coverage)
        n, m = len(exemplars), len(exemplars) + len(noise)
        findings += _cross_label(exemplars, best, counts[:n], thresholds)
        findings += _near_duplicates(exemplars, best, near_duplicate_similarity)
        findings += _matches_random(exemplars, counts[n:m], thresholds, random_match_fraction)
        findings += _probes_judged_good(exemplars, is_bad, probes, best, counts, first=m)
    order = {code: i for i, code in enumerate(CODES)}
    return sorted(findings, key=lambda f: order[f.code])  # stable: within a code, the order found


def _load(library: Library, exemplar: Exemplar) -> np.ndarray | Finding:
    """The exemplar's notes if it has at least two, else the finding that says what is wrong with it."""
    where = f"exemplar {exemplar.id!r}"
    if not (library.path / exemplar.file).exists():
        return Finding("file-missing", f"{where}: file {exemplar.file} does not exist", (exemplar.id,))
    try:
        notes = library.exemplar_notes(exemplar.id)
    except LibraryError as exc:
        code = "exemplar-empty" if isinstance(exc.__cause__, EmptyInputError) else "file-unreadable"
        return Finding(code, str(exc), (exemplar.id,))
    if notes.size == 1:
        note = notes[0]
        return Finding(
            "exemplar-single-note",
            f"{where} holds a single note (pitch {note['pitch']}, {note['end'] - note['start']:g} beats): it matches "
            "any fragment that sounds one note alone, so it is left out of the similarity checks",
            (exemplar.id,),
        )
    return notes


def _clash_key_id(exemplar_id: str) -> str:
    """Ids equal under this key differ only in case or in their punctuation ('.', '_', '-')."""
    return re.sub(r"[._-]+", "-", exemplar_id.casefold()).strip("-")


def _clashes(exemplars: Sequence[Exemplar]) -> list[Finding]:
    """Ids that differ only in case or punctuation, and distinct file paths that differ only in case."""
    findings = []
    by_id: dict[str, list[str]] = defaultdict(list)
    for e in exemplars:
        by_id[_clash_key_id(e.id)].append(e.id)
    for ids in by_id.values():
        if len(ids) > 1:
            shown = ", ".join(repr(i) for i in ids)
            findings.append(Finding("id-clash", f"ids {shown} differ only in case or punctuation", tuple(ids)))
    by_path: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for e in exemplars:
        by_path[Path(e.file).as_posix().casefold()][e.file].append(e.id)
    for spellings in by_path.values():
        if len(spellings) > 1:
            shown = ", ".join(f"{path} ({', '.join(repr(i) for i in ids)})" for path, ids in spellings.items())
            clashing = tuple(i for group in spellings.values() for i in group)
            findings.append(
                Finding(
                    "file-clash",
                    f"files {shown} differ only in case: they are one file on "
                    "case-insensitive file systems (macOS, Windows)",
                    clashing,
                )
            )
    return findings


def _where(best: BestMatches, fragment: int, template: int) -> str:
    return f"t{int(best.transpose[fragment, template]):+d}, x{fraction_text(best.stretch[fragment, template])}"


def _cross_label(
    exemplars: Sequence[Exemplar], best: BestMatches, counts: np.ndarray, thresholds: np.ndarray
) -> list[Finding]:
    """Good exemplars a bad one would veto, and bad exemplars that a good one would judge GOOD."""
    sims = best.similarity[: len(exemplars)]
    findings = []
    for code, fragment_label, template_label, verb in (
        ("good-vetoed", Label.GOOD, Label.BAD, "would be vetoed by"),
        ("bad-matches-good", Label.BAD, Label.GOOD, "would be judged good through"),
    ):
        for i, fragment in enumerate(exemplars):
            for k, template in enumerate(exemplars):
                if fragment.label is fragment_label and template.label is template_label and counts[i, k]:
                    findings.append(
                        Finding(
                            code,
                            f"{fragment_label.value} exemplar {fragment.id!r} {verb} {template_label.value} exemplar "
                            f"{template.id!r}: similarity {sims[i, k]:.3f} ({_where(best, i, k)}) >= its threshold "
                            f"{thresholds[k]:g}",
                            (fragment.id, template.id),
                        )
                    )
    return findings


def _near_duplicates(exemplars: Sequence[Exemplar], best: BestMatches, similarity: float) -> list[Finding]:
    """Pairs that each match the other at or above ``similarity``, whatever their labels."""
    sims = best.similarity[: len(exemplars)]
    mutual = np.minimum(sims, sims.T)
    findings = []
    for i, j in zip(*np.nonzero(np.triu(reaches(mutual, similarity), k=1)), strict=True):
        a, b = exemplars[i], exemplars[j]
        findings.append(
            Finding(
                "near-duplicate",
                f"{a.label.value} exemplar {a.id!r} and {b.label.value} exemplar {b.id!r} are near duplicates: each "
                f"matches the other at {mutual[i, j]:.3f} or more ({_where(best, j, i)}), near-duplicate similarity "
                f"{similarity:g}",
                (a.id, b.id),
            )
        )
    return findings


def _matches_random(
    exemplars: Sequence[Exemplar], noise_counts: np.ndarray, thresholds: np.ndarray, fraction: float
) -> list[Finding]:
    """Exemplars that count on at least ``fraction`` of the random fragments (rows of ``noise_counts``)."""
    if noise_counts.shape[0] == 0:
        return []
    hits = noise_counts.sum(axis=0)
    count = noise_counts.shape[0]
    return [
        Finding(
            "matches-random",
            f"{e.label.value} exemplar {e.id!r} reaches its threshold {thresholds[k]:g} on {hits[k]} of {count} "
            f"random fragments ({hits[k] / count:.0%}, allowed below {fraction:.0%}): it is too dense or too "
            f"simple to tell music from noise",
            (e.id,),
        )
        for k, e in enumerate(exemplars)
        if hits[k] >= fraction * count
    ]


def _probes_judged_good(
    exemplars: Sequence[Exemplar],
    is_bad: np.ndarray,
    probes: Sequence[Probe],
    best: BestMatches,
    counts: np.ndarray,
    *,
    first: int,
) -> list[Finding]:
    """A finding for each probe (rows ``first`` on of ``best`` and ``counts``) judged GOOD: a good exemplar
    counts and no bad one does. It names the most similar good exemplar that counts."""
    findings = []
    for p, probe in enumerate(probes, start=first):
        accepted = counts[p] & ~is_bad
        if not accepted.any() or (counts[p] & is_bad).any():
            continue
        k = int(np.argmax(np.where(accepted, best.similarity[p], -1.0)))
        findings.append(
            Finding(
                "probe-good",
                f"probe '{probe.name}' ({probe.family}) is judged GOOD through good exemplar {exemplars[k].id!r}: "
                f"similarity {best.similarity[p, k]:.3f}, coverage {percent_text(best.coverage[p, k])} "
                f"({_where(best, p, k)}); a search would find this loophole first",
                (exemplars[k].id,),
                probe.name,
            )
        )
    return findings
