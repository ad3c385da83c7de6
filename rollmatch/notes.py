"""Notes as one structured numpy array, and the pure functions that validate and transform them.

A note array has dtype :data:`NOTE_DTYPE` and shape (n,): ``pitch`` (MIDI 0-127), ``start`` and ``end``
(beats, i.e. quarter notes, from the fragment's beat 0; ``end >= start``) and ``velocity`` (1-127).
Arrays are kept sorted by (start, pitch).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import defaults
from .checks import number
from .errors import InputError, LimitError, ParameterError

NOTE_DTYPE = np.dtype([("pitch", np.int16), ("start", np.float64), ("end", np.float64), ("velocity", np.uint8)])


def empty_notes() -> np.ndarray:
    """A note array with no notes."""
    return np.zeros(0, dtype=NOTE_DTYPE)


def make_notes(
    pitch: Iterable[float],
    start: Iterable[float],
    end: Iterable[float],
    velocity: Iterable[float] | float = defaults.VELOCITY,
    *,
    source: str = "notes",
) -> np.ndarray:
    """Build a validated, sorted note array from parallel sequences (beats)."""
    pitch_a = np.asarray(list(pitch), dtype=np.float64)
    start_a = np.asarray(list(start), dtype=np.float64)
    end_a = np.asarray(list(end), dtype=np.float64)
    vel_a = np.broadcast_to(
        np.asarray(list(velocity) if isinstance(velocity, Iterable) else velocity, np.float64), pitch_a.shape
    )
    if not (pitch_a.shape == start_a.shape == end_a.shape == vel_a.shape) or pitch_a.ndim != 1:
        raise InputError(f"{source}: pitch, start, end and velocity must be equally long lists")
    check_note_values(pitch_a, start_a, end_a, vel_a, source=source)
    notes = np.empty(pitch_a.size, dtype=NOTE_DTYPE)
    notes["pitch"], notes["start"], notes["end"], notes["velocity"] = pitch_a, start_a, end_a, vel_a
    return sort_notes(notes)


def check_note_values(
    pitch: np.ndarray, start: np.ndarray, end: np.ndarray, velocity: np.ndarray, *, source: str
) -> None:
    """Raise :class:`InputError` naming the first invalid note; caps are checked before anything is built."""
    if pitch.size > defaults.MAX_NOTES:
        raise LimitError(f"{source}: {pitch.size} notes exceeds the limit of {defaults.MAX_NOTES}")
    checks = (
        (~np.isfinite(pitch) | (pitch != np.round(pitch)), "pitch must be a whole number"),
        ((pitch < 0) | (pitch > 127), "pitch must be within 0-127"),
        (~np.isfinite(start) | ~np.isfinite(end), "start and end must be finite numbers"),
        (start < 0, "start must be >= 0 beats"),
        (end < start, "end must be >= start"),
        (~np.isfinite(velocity) | (velocity < 1) | (velocity > 127), "velocity must be within 1-127"),
    )
    for bad, message in checks:
        with np.errstate(invalid="ignore"):
            index = np.flatnonzero(bad)
        if index.size:
            i = int(index[0])
            raise InputError(f"{source}: note {i} (pitch={pitch[i]:g}, start={start[i]:g}, end={end[i]:g}): {message}")
    if end.size and float(end.max()) > defaults.MAX_BEATS:
        raise LimitError(
            f"{source}: notes reach beat {float(end.max()):g}, past the limit of {defaults.MAX_BEATS:g} beats"
        )


def notes_from_records(records: Any, *, source: str = "note list") -> np.ndarray:
    """Validate a JSON-style note list ``[{"pitch", "start", "end", "velocity"?}, ...]`` (beats).

    Here ``end`` must be strictly after ``start``: a hand-written zero-length note is taken as a mistake.
    """
    if not isinstance(records, list):
        raise InputError(f"{source}: expected a list of notes, got {type(records).__name__}")
    if len(records) > defaults.MAX_NOTES:
        raise LimitError(f"{source}: {len(records)} notes exceeds the limit of {defaults.MAX_NOTES}")
    columns: dict[str, list[float]] = {"pitch": [], "start": [], "end": [], "velocity": []}
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InputError(f"{source}: note {i} must be an object with pitch, start and end")
        unknown = set(record) - set(columns)
        if unknown:
            raise InputError(f"{source}: note {i} has unknown field {sorted(unknown)[0]!r}")
        for key in columns:
            value = record.get(key, defaults.VELOCITY if key == "velocity" else None)
            if value is None:
                raise InputError(f"{source}: note {i} is missing {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{source}: note {i} field {key!r} must be a number, got {value!r}")
            try:
                columns[key].append(float(value))
            except OverflowError:  # an integer beyond any float: JSON allows it
                raise InputError(
                    f"{source}: note {i} field {key!r} must be a finite number, got an integer too large for one"
                ) from None
    return notes_from_columns(columns["pitch"], columns["start"], columns["end"], columns["velocity"], source=source)


def notes_from_columns(
    pitch: Iterable[float], start: Iterable[float], end: Iterable[float], velocity: Iterable[float], *, source: str
) -> np.ndarray:
    """Validate notes given from outside (a note list or a request), where ``end`` must be after ``start``:
    a hand-written zero-length note is taken as a mistake."""
    notes = make_notes(pitch, start, end, velocity, source=source)
    zero = np.flatnonzero(notes["end"] <= notes["start"])
    if zero.size:
        n = notes[zero[0]]
        raise InputError(f"{source}: a note at beat {n['start']:g} (pitch {n['pitch']}): end must be > start")
    return notes


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Notes ordered by (start, pitch, end)."""
    ordered: np.ndarray = notes[note_order(notes)]
    return ordered


def note_order(notes: np.ndarray) -> np.ndarray:
    """The permutation that sorts notes by (start, pitch, end): apply it to anything kept alongside them."""
    return np.lexsort((notes["end"], notes["pitch"], notes["start"]))


def select_beats(notes: np.ndarray, start_beat: float | None = None, end_beat: float | None = None) -> np.ndarray:
    """Notes sounding in [start_beat, end_beat), clipped to it and moved so that start_beat is beat 0.

    A zero-length note counts as sounding at its start.
    """
    lo = 0.0 if start_beat is None else number(start_beat, "start_beat", at_least=0)
    hi = np.inf if end_beat is None else number(end_beat, "end_beat", above=lo)
    keep = sounding_in(notes, lo, hi)
    out: np.ndarray = notes[keep].copy()
    out["start"] = np.maximum(out["start"], lo) - lo
    out["end"] = np.minimum(out["end"], hi) - lo
    return out


def sounding_in(notes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(n,) which notes sound in [lo, hi) beats; a zero-length note sounds at its start."""
    zero_length = notes["end"] == notes["start"]
    sounding: np.ndarray = (notes["start"] < hi) & ((notes["end"] > lo) | (zero_length & (notes["start"] >= lo)))
    return sounding


def transform_notes(
    notes: np.ndarray, *, transpose: int = 0, stretch: float = 1.0, shift_beats: float = 0.0
) -> np.ndarray:
    """Notes transposed (semitones), stretched uniformly about beat 0, then shifted (beats).

    Pitches pushed outside 0-127 raise :class:`InputError`.
    """
    number(stretch, "stretch", above=0)
    out = notes.copy()
    pitch = out["pitch"].astype(np.int64) + int(transpose)
    if pitch.size and (pitch.min() < 0 or pitch.max() > 127):
        raise InputError(f"transpose={transpose} moves notes outside MIDI pitch 0-127")
    out["pitch"] = pitch
    out["start"] = out["start"] * stretch + shift_beats
    out["end"] = out["end"] * stretch + shift_beats
    if out.size and out["start"].min() < 0:
        raise ParameterError(f"shift_beats={shift_beats} moves notes before beat 0")
    return out


def span_beats(notes: np.ndarray) -> float:
    """The last note end in beats (0 for no notes)."""
    return float(notes["end"].max()) if notes.size else 0.0


def perturb_notes(notes: np.ndarray, rng: np.random.Generator, *, drop: float = 0.1, add: float = 0.1) -> np.ndarray:
    """A noisy copy: a fraction ``drop`` of the notes removed and ``add`` x n random notes added.

    Added notes take pitches within the notes' own range, onsets within their time span and durations drawn
    from their own durations, so the noise looks like the music rather than like static.
    """
    for value, name in ((drop, "drop"), (add, "add")):
        number(value, name, at_least=0, at_most=1)
    if notes.size == 0:
        return notes.copy()
    n_drop = round(drop * notes.size)
    n_add = round(add * notes.size)
    kept = notes[np.sort(rng.permutation(notes.size)[n_drop:])]
    extra = np.empty(n_add, dtype=NOTE_DTYPE)
    extra["pitch"] = rng.integers(notes["pitch"].min(), notes["pitch"].max() + 1, n_add)
    extra["start"] = rng.uniform(notes["start"].min(), notes["end"].max(), n_add)
    extra["end"] = extra["start"] + rng.choice(notes["end"] - notes["start"], n_add)
    extra["velocity"] = rng.choice(notes["velocity"], n_add)
    return sort_notes(np.concatenate([kept, extra]))


_PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch, sharps for black keys: 60 -> 'C4', 61 -> 'C#4', 21 -> 'A0'."""
    return f"{_PITCH_CLASSES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def snap_notes(
    notes: np.ndarray, ticks_per_beat: int = defaults.MIDI_TICKS_PER_BEAT, *, keep_order: bool = False
) -> np.ndarray:
    """Notes with start and end rounded to a grid of ``ticks_per_beat`` (a MIDI file's resolution), each at
    least one tick long, sorted (unless ``keep_order``): written to MIDI at that resolution and read back,
    they are the same floats."""
    out = notes.copy()
    start = np.round(notes["start"] * ticks_per_beat)
    out["start"] = start / ticks_per_beat
    out["end"] = np.maximum(np.round(notes["end"] * ticks_per_beat), start + 1) / ticks_per_beat
    return out if keep_order else sort_notes(out)


def split_voices(notes: np.ndarray) -> np.ndarray:
    """(n,) a voice number for each note, 0 for the top voice: the texture's voices followed through time.

    There are as many voices as notes ever sound at once (at most :data:`~rollmatch.defaults.MAX_VOICES`).
    Notes that start together take the free voices (those not holding a note) in pitch order, the set of
    free voices chosen so that each new note lies nearest the last pitch of its voice; a voice not heard yet
    counts as an octave away. Voices are numbered by their mean pitch at the end, highest first. So a four-part
    chorale comes back as soprano, alto, tenor and bass, an inner voice resting included, as long as the parts
    do not cross.
    """
    n = notes.size
    voices = np.zeros(n, dtype=np.int64)
    if n == 0:
        return voices
    order = np.lexsort((-notes["pitch"].astype(np.int64), notes["start"]))
    count = min(polyphony(notes), defaults.MAX_VOICES)
    busy_until = np.full(count, -np.inf)
    last_pitch: list[int | None] = [None] * count
    starts = notes["start"][order]
    for group in np.split(order, np.flatnonzero(np.diff(starts)) + 1):
        time = float(notes["start"][group[0]])
        free = [v for v in range(count) if busy_until[v] <= time + 1e-9] or list(range(count))
        pitches = [int(notes["pitch"][i]) for i in group]  # highest first
        best: tuple[int, ...] = tuple(free[: len(pitches)])
        if len(pitches) <= len(free):

            def cost(chosen: tuple[int, ...], pitches: list[int] = pitches) -> int:
                return sum(
                    12 if (last := last_pitch[v]) is None else abs(p - last)
                    for v, p in zip(chosen, pitches, strict=True)
                )

            best = min(itertools.combinations(free, len(pitches)), key=cost)
        for rank, i in enumerate(group):
            v = best[min(rank, len(best) - 1)]
            voices[i] = v
            busy_until[v] = max(busy_until[v], float(notes["end"][i]))
            last_pitch[v] = pitches[rank]
    means = [notes["pitch"][voices == v].mean() if np.any(voices == v) else -1.0 for v in range(count)]
    rank_of = np.empty(count, dtype=np.int64)
    rank_of[np.argsort(-np.asarray(means), kind="stable")] = np.arange(count)
    return rank_of[voices]


def polyphony(notes: np.ndarray) -> int:
    """The most notes sounding at once (0 for no notes); a note ending as another starts does not overlap it."""
    if notes.size == 0:
        return 0
    times = np.concatenate([notes["start"], np.maximum(notes["end"], notes["start"] + 1e-9)])
    steps = np.concatenate([np.ones(notes.size, dtype=np.int64), -np.ones(notes.size, dtype=np.int64)])
    order = np.lexsort((steps, times))  # at equal times an end comes before a start
    return int(np.cumsum(steps[order]).max())
