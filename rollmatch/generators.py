"""Generators: what proposes candidate bars to the phrase search (:mod:`rollmatch.search`).

A generator is any callable ``generator(context, rng) -> list of note arrays``:

- ``context`` is a :class:`Context`: the piece so far (``context.notes``, beats from the piece's beat 0),
  the index of the bar wanted, the meter, how many candidates are wanted (``context.count``), the good
  exemplars as :class:`Material` (whole and cut into bars), and, inside a repeat of a ``--form``, the bar
  being repeated (``context.reference``);
- ``rng`` is a :class:`numpy.random.Generator` seeded by the search: draw every random number from it and
  the same seed gives the same piece;
- it returns at most ``context.count`` candidate bars, each a note array of dtype
  :data:`~rollmatch.notes.NOTE_DTYPE` (build one with :func:`rollmatch.make_notes`) timed in beats from the
  bar's start, every note inside [0, beats_per_bar]. Times are snapped to the MIDI grid
  (:data:`~rollmatch.defaults.MIDI_TICKS_PER_BEAT` per beat), empty bars are dropped, and anything else
  (another dtype, notes outside the bar, too many bars or notes) stops the search with an error naming the
  generator.

A Markov chain over bars or a neural network plugs in as such a function, e.g. ``--generator
mymodel:propose`` or ``--generator path/to/mymodel.py:propose``. The built-ins are :func:`variation` (the
default: recombines and mutates bars of the good exemplars) and :func:`random_walk` (a scale-constrained
melody).
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
from .errors import GeneratorError, InputError, ParameterError
from .library import Library
from .notes import (
    NOTE_DTYPE,
    check_note_values,
    empty_notes,
    select_beats,
    snap_notes,
    sort_notes,
)
from .scoring import windows
from .verdict import Label


@dataclass(frozen=True)
class SourceBar:
    """One bar of a good exemplar: ``notes`` in beats from the bar's start (notes crossing a bar line are cut)."""

    exemplar: str
    index: int  #: bar number within the exemplar, from 0
    notes: np.ndarray


class Material:
    """The good exemplars a generator may draw on, whole and cut into bars of ``beats_per_bar`` beats."""

    def __init__(self, exemplars: Sequence[tuple[str, np.ndarray]], *, beats_per_bar: int) -> None:
        self.exemplars = tuple(exemplars)  #: (id, notes in beats) of each good exemplar
        self.beats_per_bar = beats_per_bar
        bars: list[SourceBar] = []
        following: list[int | None] = []
        for exemplar, notes in self.exemplars:
            cut = [snap_notes(bar) for _, _, bar in windows(notes, window_beats=beats_per_bar)]
            for k, bar in enumerate(cut):
                if bar.size:
                    bars.append(SourceBar(exemplar, k, bar))
                    following.append(len(bars) if k + 1 < len(cut) and cut[k + 1].size else None)
        self.bars = tuple(bars)
        self._following = tuple(following)
        #: indices of the bars that some bar follows in their exemplar: where a recombined phrase can go on
        self.continuable = tuple(i for i, after in enumerate(following) if after is not None)
        self._by_shape: dict[bytes, list[int]] = {}
        for i, bar in enumerate(self.bars):
            self._by_shape.setdefault(_shape_key(bar.notes), []).append(i)

    @classmethod
    def from_library(cls, library: Library, *, beats_per_bar: int = defaults.BEATS_PER_BAR) -> Material:
        """The good exemplars of ``library``."""
        pairs = [(e.id, notes) for e, notes in zip(library.exemplars, library.notes(), strict=True) if e.label is Label.GOOD]
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


def _shape_key(notes: np.ndarray) -> bytes:
    """What a bar looks like up to transposition: ticks and pitches above its lowest, in sorted order."""
    ticks = defaults.MIDI_TICKS_PER_BEAT
    pitch = notes["pitch"].astype(np.int64)
    return np.stack([np.round(notes["start"] * ticks), np.round(notes["end"] * ticks), pitch - pitch.min()]).astype(np.int64).tobytes()


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

    def bar_notes(self, index: int) -> np.ndarray:
        """Bar ``index`` of the piece so far (negative counts from the end), in beats from that bar's start."""
        if not -self.bar <= index < self.bar:
            raise ParameterError(f"index={index} must name one of the piece's {self.bar} bars")
        index %= self.bar
        return select_beats(self.notes, index * self.beats_per_bar, (index + 1) * self.beats_per_bar)


BarGenerator = Callable[[Context, np.random.Generator], Sequence[np.ndarray]]


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
        raise GeneratorError(f"generator {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, function, None)
    if found is None:
        raise GeneratorError(f"generator {spec!r}: {module_name} has no attribute {function!r}")
    if not callable(found):
        raise GeneratorError(f"generator {spec!r}: {module_name}.{function} is a {type(found).__name__}, not a callable")
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
            raise GeneratorError(f"generator module {module_name!r} not found ({exc}); name a module on the Python path or a .py file") from None
        raise


def propose(generator: BarGenerator, name: str, context: Context, rng: np.random.Generator) -> list[np.ndarray]:
    """Ask ``generator`` (called ``name`` in messages) for candidates and check what it returns: note arrays of
    dtype NOTE_DTYPE inside the bar, at most ``context.count`` of them. Returns them snapped to the MIDI grid,
    sorted, without empty ones; raises :class:`GeneratorError` naming the generator otherwise."""
    try:
        raw = generator(context, rng)
    except GeneratorError:
        raise
    except Exception as exc:  # the generator's own failure, whatever it is, is reported as the generator's
        raise GeneratorError(f"generator {name!r} raised {type(exc).__name__}: {exc}") from exc
    return check_candidates(raw, name=name, count=context.count, beats_per_bar=context.beats_per_bar)


def check_candidates(raw: Any, *, name: str, count: int, beats_per_bar: int) -> list[np.ndarray]:
    """Validate a generator's answer (see :func:`propose`)."""
    if isinstance(raw, np.ndarray) or raw is None or not hasattr(raw, "__iter__"):
        got = "one note array" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise GeneratorError(f"generator {name!r} returned {got}; it must return a list of bars (note arrays)")
    items = list(itertools.islice(raw, count + 1))  # islice: an endless iterator must not hang the search
    if len(items) > count:
        raise GeneratorError(f"generator {name!r} returned more than the {count} candidates asked for")
    out = []
    for i, bar in enumerate(items):
        where = f"generator {name!r}, candidate {i}"
        if not isinstance(bar, np.ndarray) or bar.dtype != NOTE_DTYPE or bar.ndim != 1:
            got = f"an array of dtype {bar.dtype} and shape {bar.shape}" if isinstance(bar, np.ndarray) else type(bar).__name__
            raise GeneratorError(f"{where}: expected a note array of dtype NOTE_DTYPE (build one with rollmatch.make_notes), got {got}")
        if bar.size > defaults.MAX_NOTES_PER_BAR:
            raise GeneratorError(f"{where}: {bar.size} notes in one bar exceeds the limit of {defaults.MAX_NOTES_PER_BAR}")
        try:
            check_note_values(bar["pitch"].astype(np.float64), bar["start"], bar["end"], bar["velocity"].astype(np.float64), source=where)
        except InputError as exc:
            raise GeneratorError(str(exc)) from None
        outside = np.flatnonzero((bar["start"] >= beats_per_bar) | (bar["end"] > beats_per_bar + 1e-9))
        if outside.size:
            n = bar[outside[0]]
            raise GeneratorError(
                f"{where}: note {outside[0]} (pitch={n['pitch']}, start={n['start']:g}, end={n['end']:g}) is outside the bar "
                f"[0, {beats_per_bar}] beats; times are beats from the bar's start"
            )
        if bar.size:
            out.append(_snap_inside(bar, beats_per_bar))
    return out


def _snap_inside(bar: np.ndarray, beats_per_bar: int) -> np.ndarray:
    """A bar snapped to the MIDI grid with every note still starting before the bar's end and ending by it."""
    tick = 1 / defaults.MIDI_TICKS_PER_BEAT
    out = bar.copy()
    out["start"] = np.minimum(bar["start"], beats_per_bar - tick)
    out = snap_notes(out)
    out["end"] = np.minimum(out["end"], beats_per_bar)
    return out


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

#: variation: share of the randomly drawn bars that get one mutation.
MUTATION_RATE = 0.25
#: variation: share of the randomly drawn bars taken from those an exemplar goes on from, so that the next
#: step's Markov proposal can continue the phrase they start.
CONTINUABLE_SHARE = 0.75
#: variation: transpositions a mutation picks from, in semitones.
MUTATION_INTERVALS = (-7, -5, -4, -3, 3, 4, 5, 7)
#: variation: displacements a mutation picks from, in beats.
DISPLACEMENTS = (0.5, 1.0, 2.0)
#: variation: how far a drawn bar's mean pitch may land from the previous bar's, in semitones.
REGISTER_SPREAD = 2
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


def variation(context: Context, rng: np.random.Generator) -> list[np.ndarray]:
    """Recombine and mutate bars of the good exemplars.

    First the Markov step: where the last bar is an exemplar's bar (up to transposition), the bar that
    follows it in that exemplar, at the same transposition. Then bars drawn at random from the exemplars
    (mostly bars that their exemplar goes on from), placed near the previous bar's register; some get one
    mutation: a transposition, an inversion, a rhythmic displacement or a note substitution. Inside a
    repeat, mutations of the repeated bar are proposed too.
    """
    material = context.material
    if not material.bars:
        raise GeneratorError("the library has no good exemplars for the variation generator to draw on")
    previous = context.bar_notes(-1) if context.bar else empty_notes()
    proposals = [transpose_bar(material.bars[after].notes, shift)
                 for index, shift in material.find(previous)
                 if (after := material.successor(index)) is not None]
    if context.reference is not None and context.reference.size:
        proposals += [mutate(context.reference, rng, context.beats_per_bar) for _ in range(max(1, context.count // 4))]
    while len(proposals) < context.count:
        pool = material.continuable if material.continuable and rng.random() < CONTINUABLE_SHARE else range(len(material.bars))
        source = material.bars[pool[int(rng.integers(len(pool)))]].notes
        if previous.size:
            shift = round(float(previous["pitch"].mean() - source["pitch"].mean())) + int(rng.integers(-REGISTER_SPREAD, REGISTER_SPREAD + 1))
        else:
            shift = int(rng.integers(-REGISTER_SPREAD, REGISTER_SPREAD + 1))
        bar = transpose_bar(source, shift)
        proposals.append(mutate(bar, rng, context.beats_per_bar) if rng.random() < MUTATION_RATE else bar)
    return _distinct(proposals)[: context.count]


def mutate(notes: np.ndarray, rng: np.random.Generator, beats_per_bar: float) -> np.ndarray:
    """One mutation chosen at random: transposition, inversion, rhythmic displacement or note substitution."""
    kind = int(rng.integers(4))
    if kind == 0:
        return transpose_bar(notes, int(rng.choice(MUTATION_INTERVALS)))
    if kind == 1:
        return invert(notes)
    if kind == 2:
        return displace(notes, float(rng.choice([d for d in DISPLACEMENTS if d < beats_per_bar] or [0.5])), beats_per_bar)
    return substitute(notes, rng)


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


def _distinct(bars: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The bars without repeats, first occurrences kept in order."""
    seen: set[bytes] = set()
    out = []
    for bar in bars:
        key = snap_notes(bar).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(bar)
    return out


#: The built-in generators, by the name --generator takes.
BUILTINS: dict[str, BarGenerator] = {"variation": variation, "random-walk": random_walk}
