"""Generators: what proposes candidate bars to the phrase search (:mod:`rollmatch.search`).

A generator is any callable ``generator(context, rng) -> list of note arrays``:

- ``context`` is a :class:`Context`: the piece so far (``context.notes``, beats from the piece's beat 0) and
  its voices, where each bar came from (``context.origins``), the index of the bar wanted, the meter, how
  many candidates are wanted (``context.count``), the good exemplars as :class:`Material` (whole and cut into
  bars, with voices), the continuity rules the search applies, and, inside a repeat of a ``--form``, the bar
  being repeated (``context.reference``);
- ``rng`` is a :class:`numpy.random.Generator` seeded by the search: draw every random number from it and
  the same seed gives the same piece;
- it returns at most ``context.count`` candidate bars, each a note array of dtype
  :data:`~rollmatch.notes.NOTE_DTYPE` (build one with :func:`rollmatch.make_notes`) or a :class:`Proposal`
  (the notes with their voices, the exemplar bars they came from and what was done to them), timed in beats
  from the bar's start, every note inside [0, beats_per_bar]. Times are snapped to the MIDI grid
  (:data:`~rollmatch.defaults.MIDI_TICKS_PER_BEAT` per beat), empty bars are dropped, and anything else
  (another dtype, notes outside the bar, voices that do not fit, too many bars or notes) stops the search
  with an error naming the generator.

A neural network plugs in as such a function, e.g. ``--generator mymodel:propose`` or ``--generator
path/to/mymodel.py:propose``. The built-ins are :func:`variation` (the default: exemplar phrases varied by
ornaments, suspensions, rhythm, re-voicing, voice exchange, recombination and sequences), ``markov`` (a
variable-order Markov model of the exemplars' voices under MaxOrder's bound, :mod:`rollmatch.markov`) and
:func:`random_walk` (a scale-constrained melody).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .continuity import Continuity, bar_line_leap, material_rules, out_of_key_share
from .errors import GeneratorError, InputError, ParameterError
from .library import Library
from .notes import (
    NOTE_DTYPE,
    check_note_values,
    empty_notes,
    note_order,
    select_beats,
    snap_notes,
    sort_notes,
    sounding_in,
    span_beats,
    split_voices,
)
from .verdict import Label


@dataclass(frozen=True)
class SourceRef:
    """A bar of a good exemplar that a result's bar was made from: ``bar`` from 0, moved by ``transpose``
    semitones."""

    exemplar: str
    bar: int
    transpose: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"exemplar": self.exemplar, "bar": self.bar, "transpose": self.transpose}


@dataclass(frozen=True)
class BarOrigin:
    """Where a bar of a search's result came from."""

    #: 'start' (the given start), 'kept' (a bar a --regenerate left alone), 'generated', 'repeat' (of an
    #: earlier bar) or 'variation' (a new bar in a repeat)
    source: str
    of_bar: int | None = None  #: the bar repeated, for 'repeat' and 'variation'
    transpose: int = 0  #: semitones, for 'repeat'
    sources: tuple[SourceRef, ...] = ()  #: the exemplar bars it was made from, as its generator says
    transforms: tuple[str, ...] = ()  #: what its generator did to them, e.g. 'passing tone'

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.of_bar is not None:
            out["of_bar"] = self.of_bar
        if self.source == "repeat":
            out["transpose"] = self.transpose
        if self.sources:
            out["sources"] = [s.to_dict() for s in self.sources]
        if self.transforms:
            out["transforms"] = list(self.transforms)
        return out


@dataclass(frozen=True)
class Proposal:
    """A candidate bar with what a generator knows of it: ``notes`` (beats from the bar's start), ``voices``
    (one voice number per note, 0 the top voice; None: inferred by :func:`rollmatch.notes.split_voices`), the
    exemplar bars it was made from and the transformations applied. A generator may return plain note
    arrays instead."""

    notes: np.ndarray
    voices: np.ndarray | None = None
    sources: tuple[SourceRef, ...] = ()
    transforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceBar:
    """One bar of a good exemplar: ``notes`` in beats from the bar's start (notes crossing a bar line are
    cut) and their ``voices`` (0 the top voice) as followed through the whole exemplar."""

    exemplar: str
    index: int  #: bar number within the exemplar, from 0
    notes: np.ndarray
    voices: np.ndarray


class Material:
    """The good exemplars a generator may draw on, whole and cut into bars of ``beats_per_bar`` beats, with
    their voices, and the continuity rules they set (:func:`rollmatch.continuity.material_rules`)."""

    def __init__(self, exemplars: Sequence[tuple[str, np.ndarray]], *, beats_per_bar: int) -> None:
        self.exemplars = tuple(exemplars)  #: (id, notes in beats) of each good exemplar
        self.beats_per_bar = beats_per_bar
        self.voices = tuple(split_voices(notes) for _, notes in self.exemplars)  #: (n,) per exemplar
        bars: list[SourceBar] = []
        following: list[int | None] = []
        for (exemplar, notes), voices in zip(self.exemplars, self.voices, strict=True):
            count = math.ceil(span_beats(notes) / beats_per_bar)
            cut = [select_voiced(notes, voices, k * beats_per_bar, (k + 1) * beats_per_bar) for k in range(count)]
            for k, (bar, bar_voices) in enumerate(cut):
                if bar.size:
                    bars.append(SourceBar(exemplar, k, bar, bar_voices))
                    following.append(len(bars) if k + 1 < len(cut) and cut[k + 1][0].size else None)
        self.bars = tuple(bars)
        self._following = tuple(following)
        #: indices of the bars that some bar follows in their exemplar: where a recombined phrase can go on
        self.continuable = tuple(i for i, after in enumerate(following) if after is not None)
        #: indices of the exemplars' first bars: where a phrase starts
        self.openings = tuple(i for i, source in enumerate(self.bars) if source.index == 0)
        self._index = {(source.exemplar, source.index): i for i, source in enumerate(self.bars)}
        self._by_shape: dict[bytes, list[int]] = {}
        for i, source in enumerate(self.bars):
            self._by_shape.setdefault(_shape_key(source.notes), []).append(i)
        self.rules = material_rules(
            list(zip((n for _, n in self.exemplars), self.voices, strict=True)), beats_per_bar=beats_per_bar
        )

    @classmethod
    def from_library(cls, library: Library, *, beats_per_bar: int = defaults.BEATS_PER_BAR) -> Material:
        """The good exemplars of ``library``."""
        pairs = [
            (e.id, notes) for e, notes in zip(library.exemplars, library.notes(), strict=True) if e.label is Label.GOOD
        ]
        return cls(pairs, beats_per_bar=beats_per_bar)

    def successor(self, index: int) -> int | None:
        """The bar that follows bar ``index`` in its exemplar, or None after its last bar."""
        return self._following[index]

    def find(self, notes: np.ndarray) -> list[tuple[int, int]]:
        """The bars equal to ``notes`` (beats from a bar's start) up to transposition, as (bar index,
        semitones from that bar to ``notes``)."""
        if notes.size == 0:
            return []
        snapped = snap_notes(notes)
        low = int(snapped["pitch"].min())
        return [(i, low - int(self.bars[i].notes["pitch"].min())) for i in self._by_shape.get(_shape_key(snapped), [])]

    def index_of(self, ref: SourceRef) -> int | None:
        """The index of the bar ``ref`` names, or None when the material has no such bar."""
        return self._index.get((ref.exemplar, ref.bar))


def select_voiced(
    notes: np.ndarray, voices: np.ndarray, start_beat: float, end_beat: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rollmatch.notes.select_beats` with each kept note's voice number alongside."""
    return select_beats(notes, start_beat, end_beat), voices[sounding_in(notes, start_beat, end_beat)]


def _shape_key(notes: np.ndarray) -> bytes:
    """What a bar looks like up to transposition: ticks and pitches above its lowest, in sorted order."""
    ticks = defaults.MIDI_TICKS_PER_BEAT
    pitch = notes["pitch"].astype(np.int64)
    return (
        np.stack([np.round(notes["start"] * ticks), np.round(notes["end"] * ticks), pitch - pitch.min()])
        .astype(np.int64)
        .tobytes()
    )


@dataclass(frozen=True)
class Context:
    """What a generator sees when asked for candidates for bar ``bar`` of a piece."""

    notes: np.ndarray  #: the piece so far, beats from its beat 0 (bars 0 .. bar-1)
    bar: int  #: index of the bar wanted, from 0; also how many bars the piece has so far
    bars: int  #: the length asked for, in bars
    beats_per_bar: int
    count: int  #: candidates wanted: return at most this many
    material: Material
    reference: np.ndarray | None = None  #: inside a repeat of a --form: the bar being repeated (beats from its start)
    voices: np.ndarray | None = None  #: (n,) voice numbers of ``notes`` (None: inferred)
    origins: tuple[BarOrigin, ...] = ()  #: where each bar so far came from
    rules: Continuity | None = None  #: what the search will require of the bar (None: the material's rules)

    @property
    def piece_voices(self) -> np.ndarray:
        return split_voices(self.notes) if self.voices is None else self.voices

    @property
    def continuity(self) -> Continuity:
        return self.material.rules if self.rules is None else self.rules

    def bar_notes(self, index: int) -> np.ndarray:
        """Bar ``index`` of the piece so far (negative counts from the end), in beats from that bar's start."""
        return self.voiced_bar(index)[0]

    def voiced_bar(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Bar ``index`` of the piece so far and its notes' voices (see :meth:`bar_notes`)."""
        if not -self.bar <= index < self.bar:
            raise ParameterError(f"index={index} must name one of the piece's {self.bar} bars")
        index %= self.bar
        return select_voiced(
            self.notes, self.piece_voices, index * self.beats_per_bar, (index + 1) * self.beats_per_bar
        )


BarGenerator = Callable[[Context, np.random.Generator], Sequence["np.ndarray | Proposal"]]


# --- loading and checking ------------------------------------------------------------------------------


def load_generator(spec: str) -> BarGenerator:
    """A built-in generator by name (see :data:`BUILTINS`), or ``module:function``, or ``file.py:function``."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    module_name, colon, function = spec.rpartition(":")
    if not colon or not module_name or not function:
        raise ParameterError(f"generator={spec!r} must be a built-in ({', '.join(BUILTINS)}) or module:function")
    try:
        module = _import(module_name)
    except GeneratorError:
        raise
    except Exception as exc:  # the user's module failed while importing: name it, not our stack
        raise GeneratorError(
            f"generator {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    found = getattr(module, function, None)
    if found is None:
        raise GeneratorError(f"generator {spec!r}: {module_name} has no attribute {function!r}")
    if not callable(found):
        raise GeneratorError(
            f"generator {spec!r}: {module_name}.{function} is a {type(found).__name__}, not a callable"
        )
    return found


def _import(module_name: str) -> Any:
    """A module by dotted name, or from a .py file."""
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise GeneratorError(f"generator file {module_name}: no such file")
        spec = importlib.util.spec_from_file_location(f"rollmatch_generator_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise GeneratorError(f"generator file {module_name}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise GeneratorError(
                f"generator module {module_name!r} not found ({exc}); name a module on the Python path or a .py file"
            ) from None
        raise


def propose(generator: BarGenerator, name: str, context: Context, rng: np.random.Generator) -> list[Proposal]:
    """Ask ``generator`` (called ``name`` in messages) for candidates and check what it returns: note arrays of
    dtype NOTE_DTYPE, or :class:`Proposal` objects, inside the bar, at most ``context.count`` of them. Returns
    them as proposals snapped to the MIDI grid, sorted, with voices, without empty ones; raises
    :class:`GeneratorError` naming the generator otherwise."""
    try:
        raw = generator(context, rng)
    except GeneratorError:
        raise
    except Exception as exc:  # the generator's own failure, whatever it is, is reported as the generator's
        raise GeneratorError(f"generator {name!r} raised {type(exc).__name__}: {exc}") from exc
    return check_candidates(raw, name=name, count=context.count, beats_per_bar=context.beats_per_bar)


def check_candidates(raw: Any, *, name: str, count: int, beats_per_bar: int) -> list[Proposal]:
    """Validate a generator's answer (see :func:`propose`)."""
    if isinstance(raw, np.ndarray | Proposal) or raw is None or not hasattr(raw, "__iter__"):
        got = (
            "one note array"
            if isinstance(raw, np.ndarray)
            else "one proposal"
            if isinstance(raw, Proposal)
            else type(raw).__name__
        )
        raise GeneratorError(
            f"generator {name!r} returned {got}; it must return a list of bars (note arrays or proposals)"
        )
    items = list(itertools.islice(raw, count + 1))  # islice: an endless iterator must not hang the search
    if len(items) > count:
        raise GeneratorError(f"generator {name!r} returned more than the {count} candidates asked for")
    out = []
    for i, item in enumerate(items):
        where = f"generator {name!r}, candidate {i}"
        proposal = item if isinstance(item, Proposal) else Proposal(item)
        bar = proposal.notes
        if not isinstance(bar, np.ndarray) or bar.dtype != NOTE_DTYPE or bar.ndim != 1:
            got = (
                f"an array of dtype {bar.dtype} and shape {bar.shape}"
                if isinstance(bar, np.ndarray)
                else type(bar).__name__
            )
            raise GeneratorError(
                f"{where}: expected a note array of dtype NOTE_DTYPE (build one with rollmatch.make_notes), got {got}"
            )
        if bar.size > defaults.MAX_NOTES_PER_BAR:
            raise GeneratorError(
                f"{where}: {bar.size} notes in one bar exceeds the limit of {defaults.MAX_NOTES_PER_BAR}"
            )
        try:
            check_note_values(
                bar["pitch"].astype(np.float64),
                bar["start"],
                bar["end"],
                bar["velocity"].astype(np.float64),
                source=where,
            )
        except InputError as exc:
            raise GeneratorError(str(exc)) from None
        outside = np.flatnonzero((bar["start"] >= beats_per_bar) | (bar["end"] > beats_per_bar + 1e-9))
        if outside.size:
            n = bar[outside[0]]
            raise GeneratorError(
                f"{where}: note {outside[0]} (pitch={n['pitch']}, start={n['start']:g}, end={n['end']:g}) "
                f"is outside the bar [0, {beats_per_bar}] beats; times are beats from the bar's start"
            )
        voices = proposal.voices
        if voices is not None and (
            not isinstance(voices, np.ndarray)
            or voices.shape != bar.shape
            or voices.dtype.kind not in "iu"
            or (voices.size and (voices.min() < 0 or voices.max() >= defaults.MAX_VOICES))
        ):
            raise GeneratorError(
                f"{where}: voices must be an integer array with one voice number (0-{defaults.MAX_VOICES - 1}) per note"
            )
        if bar.size:
            notes, order = _snap_inside(bar, beats_per_bar)
            voices = split_voices(notes) if voices is None else voices.astype(np.int64)[order]
            out.append(Proposal(notes, voices, tuple(proposal.sources), tuple(proposal.transforms)))
    return out


def _snap_inside(bar: np.ndarray, beats_per_bar: int) -> tuple[np.ndarray, np.ndarray]:
    """A bar snapped to the MIDI grid with every note still starting before the bar's end and ending by it,
    sorted, and the order that sorted it."""
    tick = 1 / defaults.MIDI_TICKS_PER_BEAT
    out = bar.copy()
    out["start"] = np.minimum(bar["start"], beats_per_bar - tick)
    snapped = snap_notes(out, keep_order=True)
    snapped["end"] = np.minimum(snapped["end"], beats_per_bar)
    order = note_order(snapped)
    return snapped[order], order


# --- bar transformations, shared by the built-ins and free for any generator to use ---------------------


def transpose_bar(notes: np.ndarray, semitones: int) -> np.ndarray:
    """Notes moved by ``semitones``, then by whole octaves back into MIDI 0-127 where they leave it."""
    out = notes.copy()
    pitch = notes["pitch"].astype(np.int64) + int(semitones)
    if pitch.size and pitch.max() - pitch.min() <= 127:
        pitch += 12 * max(0, math.ceil(-pitch.min() / 12)) - 12 * max(0, math.ceil((pitch.max() - 127) / 12))
    out["pitch"] = pitch
    return out


def invert(notes: np.ndarray) -> np.ndarray:
    """Notes mirrored in pitch about the middle of their range (melodic inversion, the range kept)."""
    out = notes.copy()
    out["pitch"] = int(notes["pitch"].min()) + int(notes["pitch"].max()) - notes["pitch"]
    return sort_notes(out)


def displace(notes: np.ndarray, beats: float, beats_per_bar: float) -> np.ndarray:
    """Notes rotated ``beats`` later within the bar: what passes the bar's end comes back at its start
    (a note split by the bar line becomes two)."""
    start = notes["start"] + beats
    end = notes["end"] + beats
    wrap = start >= beats_per_bar
    start[wrap] -= beats_per_bar
    end[wrap] -= beats_per_bar
    head = notes.copy()
    head["start"], head["end"] = start, np.minimum(end, beats_per_bar)
    split = end > beats_per_bar
    tail = notes[split].copy()
    tail["start"], tail["end"] = 0.0, end[split] - beats_per_bar
    return sort_notes(np.concatenate([head, tail]))


def substitute(notes: np.ndarray, rng: np.random.Generator, *, count: int = 1) -> np.ndarray:
    """Notes with ``count`` of them (chosen at random) moved a semitone or a tone up or down."""
    out = notes.copy()
    chosen = rng.choice(notes.size, size=min(count, notes.size), replace=False)
    out["pitch"][chosen] = np.clip(notes["pitch"][chosen] + rng.choice([-2, -1, 1, 2], size=chosen.size), 0, 127)
    return sort_notes(out)


# --- the built-ins -------------------------------------------------------------------------------------

#: variation: how many transformations one candidate gets, drawn uniformly (one that does not apply to the
#: bar is skipped, so a few candidates stay as drawn).
VARIATION_STEPS = (1, 2, 2, 3)
#: variation: the transformations of a bar and their weights (see :func:`vary`).
VARIATIONS = {
    "passing tone": 3,
    "neighbour tone": 2,
    "suspension": 2,
    "dotted rhythm": 2,
    "re-voicing": 1,
    "voice exchange": 1,
    "recombined voice": 1,
    "recombined half-bar": 1,
}
#: variation and markov: the share of candidates that go on with the phrase the last bar came from, when it
#: can go on; the others start a phrase, mostly from an exemplar's opening bar.
CONTINUE_SHARE = 0.6
OPENING_SHARE = 0.75
#: variation: the share of candidates that repeat the previous bar a step higher or lower (a sequence).
SEQUENCE_SHARE = 0.1
#: How many of the best-fitting transpositions a new phrase picks from, at random.
TRANSPOSITION_CHOICES = 3


def variation(context: Context, rng: np.random.Generator) -> list[Proposal]:
    """Vary bars of the good exemplars: go on with the phrase the last bar came from, or start another at a
    transposition that keeps the piece's key, register and voice-leading; then apply up to three of
    :data:`VARIATIONS` (passing and neighbour tones, suspensions, dotted rhythms, re-voicing, voice exchange,
    a voice or half-bar from another exemplar). Some candidates repeat the previous bar a step higher or lower
    (a sequence); inside a repeat of a ``--form``, some vary the bar repeated. Voices are kept throughout."""
    material = context.material
    if not material.bars:
        raise GeneratorError("the library has no good exemplars for the variation generator to draw on")
    proposals: list[Proposal] = []
    if context.reference is not None and context.reference.size:
        reference = Proposal(context.reference, split_voices(context.reference))
        proposals += [vary(reference, context, rng) for _ in range(max(1, context.count // 4))]
    for index, shift in plan_bars(context, rng, context.count - len(proposals)):
        if context.bar and rng.random() < SEQUENCE_SHARE:
            proposals.append(vary(sequence(context, rng), context, rng, steps=int(rng.integers(0, 2))))
            continue
        source = material.bars[index]
        bar = Proposal(
            transpose_bar(source.notes, shift), source.voices, (SourceRef(source.exemplar, source.index, shift),)
        )
        proposals.append(vary(bar, context, rng))
    return _distinct(proposals)[: context.count]


def plan_bars(context: Context, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
    """``count`` (material bar index, transposition) pairs to build candidates from: mostly the next bar of the
    phrase the last bar came from (:data:`CONTINUE_SHARE`), else a phrase start at a fitting transposition."""
    material = context.material
    going_on = continuation(context)
    out = []
    for _ in range(count):
        if going_on is not None and rng.random() < CONTINUE_SHARE:
            out.append(going_on)
            continue
        pool = (
            material.openings
            if material.openings and rng.random() < OPENING_SHARE
            else material.continuable or range(len(material.bars))
        )
        index = int(pool[int(rng.integers(len(pool)))])
        out.append((index, fit_transposition(material.bars[index], context, rng)))
    return out


def continuation(context: Context) -> tuple[int, int] | None:
    """The bar that goes on with the phrase the piece's last bar came from, and its transposition: from the
    last bar's origin where its generator named its source, else where the last bar equals an exemplar bar."""
    if not context.bar:
        return None
    material = context.material
    if context.origins and context.origins[-1].sources:
        ref = context.origins[-1].sources[0]
        index = material.index_of(ref)
        after = None if index is None else material.successor(index)
        return None if after is None else (after, ref.transpose)
    for index, shift in material.find(context.bar_notes(-1)):
        if (after := material.successor(index)) is not None:
            return after, shift
    return None


def fit_transposition(source: SourceBar, context: Context, rng: np.random.Generator) -> int:
    """A transposition (semitones, within an octave) for a phrase starting with ``source``: one that keeps
    the bar within the register, in the key asked for (else in the key the piece is in), and near the last
    bar with no voice leaping too far; one of the :data:`TRANSPOSITION_CHOICES` best, at random."""
    rules = context.continuity
    previous, previous_voices = context.voiced_bar(-1) if context.bar else (empty_notes(), np.zeros(0, dtype=np.int64))
    tonic = fitted_tonic(context.notes) if context.notes.size else None
    low, high = int(source.notes["pitch"].min()), int(source.notes["pitch"].max())
    ranked = []
    for shift in range(-12, 13):
        if low + shift < rules.low or high + shift > rules.high:
            continue
        moved = transpose_bar(source.notes, shift)
        if rules.key is not None and out_of_key_share(moved, rules.key) > rules.out_of_key:
            continue
        cost = abs(shift) / 12
        if previous.size:
            leap = bar_line_leap(previous, previous_voices, moved, source.voices)
            if leap > rules.max_leap:
                continue
            cost = leap + abs(float(moved["pitch"].mean() - previous["pitch"].mean())) / 2
        if rules.key is None and tonic is not None and fitted_tonic(moved) != tonic:
            cost += 12
        ranked.append((cost, shift))
    if not ranked:
        return 0  # nothing fits: the search's continuity check will say why
    ranked.sort()
    return ranked[int(rng.integers(min(TRANSPOSITION_CHOICES, len(ranked))))][1]


def sequence(context: Context, rng: np.random.Generator) -> Proposal:
    """The piece's last bar a step (one or two semitones, the one that keeps more of it in the piece's scale)
    higher or lower, its sources moved with it."""
    notes, voices = context.voiced_bar(-1)
    direction = int(rng.choice((-1, 1)))
    scale = _scale(context, notes)
    step = (
        max((1, 2), key=lambda s: (np.isin((notes["pitch"] + direction * s) % 12, sorted(scale)).mean(), s)) * direction
    )
    origin = context.origins[-1] if context.origins else None
    sources = tuple(SourceRef(r.exemplar, r.bar, r.transpose + step) for r in origin.sources) if origin else ()
    return Proposal(transpose_bar(notes, step), voices, sources, ("sequence",))


def vary(bar: Proposal, context: Context, rng: np.random.Generator, *, steps: int | None = None) -> Proposal:
    """``bar`` with ``steps`` (default: drawn from :data:`VARIATION_STEPS`) transformations drawn from
    :data:`VARIATIONS` by weight; one that does not apply to the bar is skipped."""
    names = list(VARIATIONS)
    weights = np.array([VARIATIONS[n] for n in names], dtype=np.float64)
    rows = _rows(bar.notes, split_voices(bar.notes) if bar.voices is None else bar.voices)
    scale = _scale(context, bar.notes)
    sources, done = list(bar.sources), list(bar.transforms)
    for _ in range(int(rng.choice(VARIATION_STEPS)) if steps is None else steps):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        changed = _TRANSFORMS[name](rows, rng, scale=scale, context=context, sources=sources)
        if changed is not None:
            rows = changed
            done.append(name)
    notes, voices = _arrays(rows)
    return Proposal(notes, voices, tuple(sources), tuple(done))


def _scale(context: Context, bar: np.ndarray) -> set[int]:
    """The pitch classes steps are taken on: the key asked for, else the major scale that fits the piece best."""
    key = context.continuity.key
    return (
        set(key.classes())
        if key is not None
        else set(scale_pitches(fitted_tonic(np.concatenate([context.notes, bar]))) % 12)
    )


# Rows are [pitch, start, end, velocity, voice] lists: easy to split and join notes in, per voice.
Row = list[float]


def _rows(notes: np.ndarray, voices: np.ndarray) -> list[Row]:
    return [
        [float(n["pitch"]), float(n["start"]), float(n["end"]), float(n["velocity"]), float(v)]
        for n, v in zip(notes, voices, strict=True)
    ]


def _arrays(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    if rows:
        table = np.array(rows)
        notes["pitch"], notes["start"], notes["end"], notes["velocity"] = (
            table[:, 0],
            table[:, 1],
            table[:, 2],
            table[:, 3],
        )
        voices = table[:, 4].astype(np.int64)
    else:
        voices = np.zeros(0, dtype=np.int64)
    order = note_order(notes)
    return notes[order], voices[order]


def _pairs(rows: list[Row], *, min_length: float) -> list[tuple[int, int]]:
    """(a, b) row indices of consecutive notes of one voice, b starting as a ends, a at least ``min_length``."""
    out = []
    by_voice: dict[float, list[int]] = {}
    for i in sorted(range(len(rows)), key=lambda i: rows[i][1]):
        by_voice.setdefault(rows[i][4], []).append(i)
    for line in by_voice.values():
        for a, b in itertools.pairwise(line):
            if abs(rows[a][2] - rows[b][1]) < 1e-9 and rows[a][2] - rows[a][1] >= min_length - 1e-9:
                out.append((a, b))
    return out


def _pick(options: list[Any], rng: np.random.Generator) -> Any:
    return options[int(rng.integers(len(options)))] if options else None


def _step_toward(pitch: float, direction: int, scale: set[int]) -> float:
    """The scale step next to ``pitch`` in ``direction`` (a tone if on the scale, else a semitone)."""
    return pitch + direction * (2 if (pitch + 2 * direction) % 12 in scale else 1)


def _passing_tone(rows: list[Row], rng: np.random.Generator, *, scale: set[int], **_: Any) -> list[Row] | None:
    """A voice moving by a third fills it: the first note's second half becomes the step between."""
    pair = _pick([(a, b) for a, b in _pairs(rows, min_length=2 / 3) if 3 <= abs(rows[b][0] - rows[a][0]) <= 4], rng)
    if pair is None:
        return None
    a, b = pair
    middle = (rows[a][1] + rows[a][2]) / 2
    direction = 1 if rows[b][0] > rows[a][0] else -1
    out = [list(r) for r in rows]
    out[a][2] = middle
    return [*out, [_step_toward(rows[a][0], direction, scale), middle, rows[b][1], rows[a][3], rows[a][4]]]


def _neighbour_tone(rows: list[Row], rng: np.random.Generator, *, scale: set[int], **_: Any) -> list[Row] | None:
    """A note followed by the same pitch, or any note of a beat or more, steps to a neighbour and back: its
    second half (its third quarter, when it does not return by itself) moves a step up or down."""
    repeated = [(a, b) for a, b in _pairs(rows, min_length=2 / 3) if rows[a][0] == rows[b][0]]
    long_notes = [(a, None) for a, r in enumerate(rows) if r[2] - r[1] >= 1 - 1e-9]
    pair = _pick(repeated or long_notes, rng)
    if pair is None:
        return None
    a, b = pair
    start, end = rows[a][1], rows[a][2]
    direction = int(rng.choice((-1, 1)))
    neighbour = _step_toward(rows[a][0], direction, scale)
    out = [list(r) for r in rows]
    if b is not None:
        out[a][2] = (start + end) / 2
        return [*out, [neighbour, (start + end) / 2, end, rows[a][3], rows[a][4]]]
    length = end - start
    out[a][2] = start + length / 2
    return [
        *out,
        [neighbour, start + length / 2, start + 3 * length / 4, rows[a][3], rows[a][4]],
        [rows[a][0], start + 3 * length / 4, end, rows[a][3], rows[a][4]],
    ]


def _suspension(rows: list[Row], rng: np.random.Generator, **_: Any) -> list[Row] | None:
    """A voice moving by step holds its note into half of the next (a suspension, or a retardation upward)."""
    pair = _pick(
        [
            (a, b)
            for a, b in _pairs(rows, min_length=0)
            if 1 <= abs(rows[b][0] - rows[a][0]) <= 2 and rows[b][2] - rows[b][1] >= 2 / 3 - 1e-9
        ],
        rng,
    )
    if pair is None:
        return None
    a, b = pair
    out = [list(r) for r in rows]
    out[a][2] = out[b][1] = (rows[b][1] + rows[b][2]) / 2
    return out


def _dotted_rhythm(rows: list[Row], rng: np.random.Generator, **_: Any) -> list[Row] | None:
    """Two equal notes of a voice become long-short: the first dotted, the second a third as long."""
    pair = _pick(
        [
            (a, b)
            for a, b in _pairs(rows, min_length=2 / 3)
            if abs((rows[a][2] - rows[a][1]) - (rows[b][2] - rows[b][1])) < 1e-9
        ],
        rng,
    )
    if pair is None:
        return None
    a, b = pair
    out = [list(r) for r in rows]
    out[a][2] = out[b][1] = rows[a][1] + 1.5 * (rows[a][2] - rows[a][1])
    return out


def _sounding_at(rows: list[Row], time: float) -> list[int]:
    """Rows sounding at ``time``, highest first."""
    return sorted((i for i, r in enumerate(rows) if r[1] <= time + 1e-9 < r[2]), key=lambda i: -rows[i][0])


def _revoice(rows: list[Row], rng: np.random.Generator, **_: Any) -> list[Row] | None:
    """An inner voice's note takes another note of its chord, in the octave that keeps it between the
    voices around it."""
    options = []
    for i, row in enumerate(rows):
        chord = _sounding_at(rows, row[1])
        if len(chord) < 3 or chord.index(i) in (0, len(chord) - 1):
            continue
        above, below = rows[chord[chord.index(i) - 1]][0], rows[chord[chord.index(i) + 1]][0]
        for other in {rows[j][0] % 12 for j in chord} - {row[0] % 12}:
            pitch = row[0] + ((other - row[0]) % 12)
            pitch = min((pitch - 12, pitch), key=lambda p: abs(p - row[0]))
            if below < pitch < above:
                options.append((i, pitch))
    choice = _pick(options, rng)
    if choice is None:
        return None
    out = [list(r) for r in rows]
    out[choice[0]][0] = choice[1]
    return out


def _voice_exchange(rows: list[Row], rng: np.random.Generator, **_: Any) -> list[Row] | None:
    """Two adjacent voices that start notes together trade pitch classes there, each in the octave nearest
    its own note, as long as the upper stays above the lower."""
    options = []
    for i, upper in enumerate(rows):
        for j, lower in enumerate(rows):
            if lower[4] == upper[4] + 1 and abs(lower[1] - upper[1]) < 1e-9 and lower[0] % 12 != upper[0] % 12:
                high = min((lower[0] + 12 * k for k in range(-3, 4)), key=lambda p: abs(p - upper[0]))
                low = min((upper[0] + 12 * k for k in range(-3, 4)), key=lambda p: abs(p - lower[0]))
                if high > low:
                    options.append((i, j, high, low))
    choice = _pick(options, rng)
    if choice is None:
        return None
    i, j, high, low = choice
    out = [list(r) for r in rows]
    out[i][0], out[j][0] = high, low
    return out


def _recombined_voice(
    rows: list[Row], rng: np.random.Generator, *, context: Context, sources: list[SourceRef], **_: Any
) -> list[Row] | None:
    """One voice taken from the same voice of another exemplar's bar, moved to the replaced voice's mean pitch."""
    voices = sorted({r[4] for r in rows})
    donor = _pick(
        [b for b in context.material.bars if b.voices.size and b.exemplar not in {s.exemplar for s in sources}], rng
    )
    if donor is None or len(voices) < 2:
        return None
    voice = voices[int(rng.integers(len(voices)))]
    line = [r for r in _rows(donor.notes, donor.voices) if r[4] == voice]
    mine = [r for r in rows if r[4] == voice]
    if not line or not mine:
        return None
    shift = round(float(np.mean([r[0] for r in mine]) - np.mean([r[0] for r in line])))
    sources.append(SourceRef(donor.exemplar, donor.index, shift))
    return [r for r in rows if r[4] != voice] + [[r[0] + shift, r[1], r[2], r[3], r[4]] for r in line]


def _recombined_half_bar(
    rows: list[Row], rng: np.random.Generator, *, context: Context, sources: list[SourceRef], **_: Any
) -> list[Row] | None:
    """The bar's second half taken from the second half of another exemplar's bar, moved to the mean pitch
    of the half it replaces."""
    half = context.beats_per_bar / 2
    donor = _pick([b for b in context.material.bars if b.exemplar not in {s.exemplar for s in sources}], rng)
    if donor is None:
        return None
    notes, voices = select_voiced(donor.notes, donor.voices, half, context.beats_per_bar)
    line = [[r[0], r[1] + half, r[2] + half, r[3], r[4]] for r in _rows(notes, voices)]
    kept = [[r[0], r[1], min(r[2], half), r[3], r[4]] for r in rows if r[1] < half - 1e-9]
    replaced = [r for r in rows if r[2] > half + 1e-9]
    if not line or not replaced or not kept:
        return None
    shift = round(float(np.mean([r[0] for r in replaced]) - np.mean([r[0] for r in line])))
    sources.append(SourceRef(donor.exemplar, donor.index, shift))
    return kept + [[r[0] + shift, r[1], r[2], r[3], r[4]] for r in line]


_TRANSFORMS: dict[str, Callable[..., list[Row] | None]] = {
    "passing tone": _passing_tone,
    "neighbour tone": _neighbour_tone,
    "suspension": _suspension,
    "dotted rhythm": _dotted_rhythm,
    "re-voicing": _revoice,
    "voice exchange": _voice_exchange,
    "recombined voice": _recombined_voice,
    "recombined half-bar": _recombined_half_bar,
}


#: random-walk: the major scale, as pitch classes above the tonic.
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
#: random-walk: note lengths in beats, drawn uniformly (a bar's last note is cut to fit).
WALK_DURATIONS = (0.5, 0.5, 1.0, 1.0, 1.0, 2.0)
#: random-walk: steps in scale degrees, and their probabilities.
WALK_STEPS = (-2, -1, 0, 1, 2)
WALK_STEP_WEIGHTS = (0.15, 0.3, 0.1, 0.3, 0.15)
#: random-walk: the pitch it starts from in an empty piece, and the range it stays in.
WALK_START = 67
WALK_RANGE = (48, 84)


def random_walk(context: Context, rng: np.random.Generator) -> list[np.ndarray]:
    """Melodies that walk by steps and small leaps on the major scale that fits the piece so far best
    (C major in an empty piece), continuing from its last, highest note."""
    scale = scale_pitches(fitted_tonic(context.notes))
    if context.notes.size:
        last = context.notes[context.notes["start"] == context.notes["start"].max()]
        here = int(np.argmin(np.abs(scale - int(last["pitch"].max()))))
    else:
        here = int(np.argmin(np.abs(scale - WALK_START)))
    low, high = np.searchsorted(scale, WALK_RANGE[0]), np.searchsorted(scale, WALK_RANGE[1], side="right") - 1
    bars = []
    for _ in range(context.count):
        starts, ends, pitches = [], [], []
        time, degree = 0.0, here
        while time < context.beats_per_bar:
            length = min(float(rng.choice(WALK_DURATIONS)), context.beats_per_bar - time)
            degree = int(np.clip(degree + rng.choice(WALK_STEPS, p=WALK_STEP_WEIGHTS), low, high))
            starts.append(time)
            ends.append(time + length)
            pitches.append(int(scale[degree]))
            time += length
        bar = np.zeros(len(pitches), dtype=NOTE_DTYPE)
        bar["pitch"], bar["start"], bar["end"], bar["velocity"] = pitches, starts, ends, 80
        bars.append(bar)
    return _distinct(bars)


def fitted_tonic(notes: np.ndarray) -> int:
    """Pitch class (0 = C) of the major scale holding the most of the notes' sounding time; 0 for no notes."""
    if notes.size == 0:
        return 0
    weight = np.bincount(notes["pitch"] % 12, weights=notes["end"] - notes["start"] + 1e-3, minlength=12)
    fits = [weight[[(tonic + step) % 12 for step in MAJOR_SCALE]].sum() for tonic in range(12)]
    return int(np.argmax(fits))


def scale_pitches(tonic: int) -> np.ndarray:
    """Every MIDI pitch of the major scale on ``tonic``, ascending."""
    return np.array([p for p in range(128) if (p - tonic) % 12 in MAJOR_SCALE])


def _distinct(bars: Sequence[Any]) -> list[Any]:
    """The bars (note arrays or proposals) without repeats of the same notes, first occurrences kept in order."""
    seen: set[bytes] = set()
    out = []
    for bar in bars:
        key = snap_notes(bar.notes if isinstance(bar, Proposal) else bar).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(bar)
    return out


def markov(context: Context, rng: np.random.Generator) -> list[Proposal]:
    """The Markov generator of :mod:`rollmatch.markov` (imported when first asked for)."""
    from .markov import markov as generate  # noqa: PLC0415  (markov builds on this module)

    return generate(context, rng)


#: The built-in generators, by the name --generator takes.
BUILTINS: dict[str, BarGenerator] = {"variation": variation, "markov": markov, "random-walk": random_walk}
