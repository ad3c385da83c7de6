"""Readers: MIDI, MusicXML, Humdrum, ABC and JSON note lists → note arrays in beats.

This is the parse boundary: every third-party exception is caught here and re-raised as
:class:`~rollmatch.errors.InputError` with the file's name, and every size cap is checked before
anything proportional to the input is allocated.

Bars: a file is read as a :class:`Piece`, its notes plus where its bars fall (:class:`Bars`). Scores take
their bars from music21's measures; a MIDI file from its time-signature meta events
(:func:`bars_from_time_signatures`). Bar numbers count the way musicians count: bar 1 is the first full
bar and a pickup (anacrusis) before it is bar 0 (see :func:`bars_from_measures`).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import tempfile
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import defaults
from .checks import number
from .errors import EmptyInputError, InputError, LimitError, ParameterError
from .notes import make_notes, notes_from_records, select_beats, span_beats

#: File suffix → format name.
FORMATS = {
    ".mid": "midi",
    ".midi": "midi",
    ".xml": "musicxml",
    ".musicxml": "musicxml",
    ".mxl": "musicxml",
    ".krn": "humdrum",
    ".abc": "abc",
    ".json": "json",
}
_MUSIC21_FORMATS = {"musicxml", "humdrum", "abc"}
DRUM_CHANNEL = 9  # General MIDI channel 10, counted from 0
#: Largest time-signature denominator accepted (a 1/64 bar is a sixteenth of a beat).
MAX_TIME_SIGNATURE_DENOMINATOR = 64
#: Beat differences below this count as none: a bar line against a time-signature change, a pickup against its bar.
BAR_TOLERANCE = 1e-6

TrackSelector = Sequence[int | str] | None


def format_of(path: str | os.PathLike[str]) -> str:
    """The format name for a file's suffix, or :class:`InputError` naming the supported ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        supported = " ".join(sorted(FORMATS))
        raise InputError(f"{Path(path).name}: unknown file type {suffix or '(none)'!r}; supported: {supported}")
    return FORMATS[suffix]


@dataclass(frozen=True)
class Bars:
    """Where a piece's bars fall: bar ``first + i`` spans beats [bounds[i], bounds[i + 1]).

    ``bounds`` has shape (n + 1,), in beats, strictly increasing; ``first`` is 0 when the piece opens with a
    pickup (bar 0), else 1. There is always a bar 1.
    """

    bounds: np.ndarray
    first: int = 1

    @property
    def last(self) -> int:
        """The number of the last bar."""
        return self.first + self.bounds.size - 2

    @property
    def starts(self) -> np.ndarray:
        """Where each bar begins (beats), shape (n,)."""
        return self.bounds[:-1]

    @property
    def numbers(self) -> np.ndarray:
        """The number of each bar, shape (n,)."""
        return self.first + np.arange(self.bounds.size - 1)

    def window(self, start_beat: float, end_beat: float) -> Bars:
        """The bars sounding in [start_beat, end_beat), with beats counted from start_beat. The bar already
        running at start_beat is kept, starting at or before 0, so that numbering and counting stay right."""
        running = max(int(np.searchsorted(self.starts, start_beat, side="right")) - 1, 0)
        stop = max(int(np.searchsorted(self.starts, end_beat, side="left")), running + 1)
        return Bars(self.bounds[running : stop + 1] - start_beat, self.first + running)

    def count(self, end_beat: float) -> int:
        """How many bars overlap [0, end_beat)."""
        starts = self.starts
        return int(np.count_nonzero(starts < end_beat) - max(np.count_nonzero(starts <= 0) - 1, 0))

    def describe(self) -> str:
        """'8 bars', or '8 bars after a pickup bar 0'."""
        full = self.last
        text = f"{full} bar{'' if full == 1 else 's'}"
        return f"{text} after a pickup bar 0" if self.first == 0 else text


@dataclass(frozen=True)
class Piece:
    """A file's notes (beats, all of the chosen tracks) and, computed on first use, its bars."""

    name: str
    notes: np.ndarray
    bar_lines: Callable[[], Bars] = field(repr=False, compare=False)

    @cached_property
    def bars(self) -> Bars:
        return self.bar_lines()

    def select(self, start_beat: float | None = None, end_beat: float | None = None) -> np.ndarray:
        """The notes in [start_beat, end_beat), moved to start at beat 0; :class:`InputError` when none."""
        return _select(self.notes, self.name, start_beat, end_beat)


def read_notes(
    path: str | os.PathLike[str],
    *,
    tracks: TrackSelector = None,
    start_beat: float | None = None,
    end_beat: float | None = None,
) -> np.ndarray:
    """Read a file's notes (beats), optionally only some tracks/parts and a beat range [start, end).

    ``tracks`` picks MIDI tracks or score parts by 0-based index or by name. Drum tracks are left out.
    Raises :class:`InputError` when the file is unreadable, :class:`EmptyInputError` when it holds no notes in
    the selection.
    """
    return read_piece(path, tracks=tracks).select(start_beat, end_beat)


def read_piece(path: str | os.PathLike[str], *, tracks: TrackSelector = None) -> Piece:
    """Read a file's notes and bars (see :func:`read_notes` for ``tracks``)."""
    name = Path(path).name
    fmt = format_of(path)
    if fmt in _MUSIC21_FORMATS:
        _check_file(path)
        return _read_music21(Path(path), fmt, name=name, tracks=tracks)
    return _parse_bytes(read_file_bytes(path), fmt, name=name, tracks=tracks)


def read_notes_bytes(
    data: bytes,
    fmt: str,
    *,
    name: str = "<bytes>",
    tracks: TrackSelector = None,
    start_beat: float | None = None,
    end_beat: float | None = None,
) -> np.ndarray:
    """Like :func:`read_notes` for a file's bytes in format ``fmt`` (a value of :data:`FORMATS`)."""
    return read_piece_bytes(data, fmt, name=name, tracks=tracks).select(start_beat, end_beat)


def read_piece_bytes(data: bytes, fmt: str, *, name: str = "<bytes>", tracks: TrackSelector = None) -> Piece:
    """Like :func:`read_piece` for a file's bytes in format ``fmt`` (a value of :data:`FORMATS`)."""
    if fmt not in set(FORMATS.values()):
        raise InputError(f"{name}: unknown format {fmt!r}; supported: {', '.join(sorted(set(FORMATS.values())))}")
    _check_size(len(data), name)
    return _parse_bytes(data, fmt, name=name, tracks=tracks)


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """A music file's bytes, after checking that it exists, is a regular file and is within the size cap."""
    _check_file(path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def music_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files named, with each folder replaced by the music files directly inside it, sorted by name.

    A music file is one whose suffix rollmatch reads (:data:`FORMATS`, any case); hidden files and
    subfolders are left out. A folder holding none is an :class:`InputError`.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        if not entry.is_dir():
            found.append(entry)
            continue
        try:
            inside = sorted(
                (
                    f
                    for f in entry.iterdir()
                    if f.suffix.lower() in FORMATS and not f.name.startswith(".") and f.is_file()
                ),
                key=lambda f: f.name,
            )
        except OSError as exc:
            raise InputError(f"{entry}: cannot list: {exc.strerror or exc}") from None
        if not inside:
            raise InputError(f"{entry}: holds no music files ({' '.join(sorted(FORMATS))})")
        found += inside
    return found


def _check_file(path: str | os.PathLike[str]) -> None:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not Path(path).is_file():
        raise InputError(f"{path}: not a regular file")
    _check_size(size, Path(path).name)


def _check_size(size: int, name: str) -> None:
    if size > defaults.MAX_FILE_BYTES:
        raise LimitError(f"{name}: {size} bytes exceeds the limit of {defaults.MAX_FILE_BYTES} bytes")
    if size == 0:
        raise InputError(f"{name}: file is empty")


def _select(notes: np.ndarray, name: str, start_beat: float | None, end_beat: float | None) -> np.ndarray:
    ranged = start_beat is not None or end_beat is not None
    if ranged:
        notes = select_beats(notes, start_beat, end_beat)
    if notes.size == 0:
        where = f" in beats [{start_beat or 0:g}, {'end' if end_beat is None else f'{end_beat:g}'})" if ranged else ""
        raise EmptyInputError(f"{name}: no notes{where} (drum tracks are left out)")
    return notes


def _parse_bytes(data: bytes, fmt: str, *, name: str, tracks: TrackSelector) -> Piece:
    if fmt == "midi":
        return _read_midi(data, name=name, tracks=tracks)
    if fmt == "json":
        if tracks is not None:
            raise InputError(f"{name}: a JSON note list has no tracks to choose from")
        try:
            records = json.loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise InputError(f"{name}: not valid JSON: {exc}") from None
        except RecursionError:
            raise InputError(f"{name}: not valid JSON: nested too deeply") from None
        notes = notes_from_records(records, source=name)
        return Piece(name, notes, lambda: _no_bars(name))
    suffix = {"musicxml": ".musicxml", "humdrum": ".krn", "abc": ".abc"}[fmt]
    if fmt == "musicxml" and data[:2] == b"PK":
        suffix = ".mxl"  # compressed MusicXML is a zip archive
    with tempfile.TemporaryDirectory(prefix="rollmatch-") as tmp:
        path = Path(tmp) / f"fragment{suffix}"
        path.write_bytes(data)
        return _read_music21(path, fmt, name=name, tracks=tracks)


# --- MIDI -------------------------------------------------------------------------------------------


def _read_midi(data: bytes, *, name: str, tracks: TrackSelector) -> Piece:
    """Notes from Standard MIDI File bytes, timed by ticks / ticks-per-beat, so tempo never matters.

    Notes pair first-in first-out per (channel, pitch); a note whose on and off share a tick is kept
    (as zero length), a note never turned off ends with its track, the drum channel and the sustain
    pedal are ignored. Bars come from the time signatures of every track (in a type-1 file they usually
    sit in the conductor track, which holds no notes), laid out up to the last note read.
    """
    import mido  # noqa: PLC0415  (the parser pretty_midi itself uses)

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, KeySignatureError...
        raise InputError(f"{name}: not a readable MIDI file: {_one_line(exc)}") from None
    resolution = midi.ticks_per_beat
    if not 0 < resolution < 0x8000:
        raise InputError(
            f"{name}: MIDI time division {resolution} is not ticks per beat (SMPTE timing is not supported)"
        )
    max_tick = int(defaults.MAX_BEATS * resolution)
    names = [_track_name(track) for track in midi.tracks]
    chosen = _choose(tracks, names, name=name, kind="track")

    pitch: list[int] = []
    on_tick: list[int] = []
    off_tick: list[int] = []
    velocity: list[int] = []
    note_ons = 0
    for index in chosen:
        open_notes: defaultdict[tuple[int, int], deque[tuple[int, int]]] = defaultdict(deque)
        tick = 0
        for message in midi.tracks[index]:
            tick += message.time
            if tick > max_tick:
                raise LimitError(f"{name}: track {index} runs past beat {defaults.MAX_BEATS:g}, the limit")
            kind = message.type
            if kind not in ("note_on", "note_off") or message.channel == DRUM_CHANNEL:
                continue
            key = (message.channel, message.note)
            if kind == "note_on" and message.velocity > 0:
                note_ons += 1
                if note_ons > defaults.MAX_NOTES:
                    raise LimitError(f"{name}: more than {defaults.MAX_NOTES} notes, the limit")
                open_notes[key].append((tick, message.velocity))
            elif open_notes[key]:
                start, vel = open_notes[key].popleft()
                pitch.append(message.note)
                on_tick.append(start)
                off_tick.append(tick)
                velocity.append(vel)
        for (_, note), pending in open_notes.items():
            for start, vel in pending:
                pitch.append(note)
                on_tick.append(start)
                off_tick.append(tick)
                velocity.append(vel)
    notes = make_notes(
        pitch,
        np.asarray(on_tick, dtype=np.float64) / resolution,
        np.asarray(off_tick, dtype=np.float64) / resolution,
        velocity,
        source=name,
    )
    changes = _midi_time_signatures(midi.tracks, resolution)
    return Piece(name, notes, lambda: bars_from_time_signatures(changes, span_beats(notes), name=name))


def _midi_time_signatures(tracks: Sequence[Sequence[object]], resolution: int) -> list[tuple[float, int, int]]:
    """Every time-signature meta event as (beat, numerator, denominator), in time order (stable across tracks)."""
    changes: list[tuple[float, int, int]] = []
    for track in tracks:
        tick = 0
        for message in track:
            tick += message.time  # type: ignore[attr-defined]
            if getattr(message, "type", None) == "time_signature":
                changes.append((tick / resolution, int(message.numerator), int(message.denominator)))  # type: ignore[attr-defined]
    return sorted(changes, key=lambda change: change[0])


def _track_name(track: Sequence[object]) -> str:
    for message in track:
        if getattr(message, "type", None) == "track_name":
            return str(message.name)
    return ""


# --- music21 score formats ---------------------------------------------------------------------------


def _read_music21(path: Path, fmt: str, *, name: str, tracks: TrackSelector) -> Piece:
    """Notes from a score via music21: ties joined, chords split, offsets and lengths in quarter notes.

    A file holding several pieces (an ABC tune book) contributes its first piece; repeats are not expanded.
    Bars are the measures of the first chosen part (see :func:`bars_from_measures`).
    """
    from music21 import converter, note, stream  # noqa: PLC0415  (slow import, score formats only)

    try:
        parsed = converter.parseFile(str(path), format=fmt, forceSource=True, storePickle=False)
        if isinstance(parsed, stream.Opus):
            if not parsed.scores:
                raise InputError(f"{name}: holds no pieces")
            parsed = parsed.scores[0]
        parsed = parsed.stripTies()
        parts = list(parsed.parts) if isinstance(parsed, stream.Score) and parsed.parts else [parsed]
        names = [str(getattr(part, "partName", None) or "") for part in parts]
        chosen = _choose(tracks, names, name=name, kind="part")
        pitch: list[int] = []
        start: list[float] = []
        end: list[float] = []
        velocity: list[int] = []
        for index in chosen:
            for element in parts[index].flatten().notes:
                if isinstance(element, note.Unpitched) or not hasattr(element, "pitches"):
                    continue
                offset = float(element.offset)
                length = float(element.duration.quarterLength)
                vel = element.volume.velocity if element.volume is not None else None
                for p in element.pitches:
                    pitch.append(int(p.midi))
                    start.append(offset)
                    end.append(offset + length)
                    velocity.append(int(vel) if vel else 90)
                if len(pitch) > defaults.MAX_NOTES:
                    raise LimitError(f"{name}: more than {defaults.MAX_NOTES} notes, the limit")
    except InputError:
        raise
    except Exception as exc:  # music21 raises many unrelated types on malformed scores
        raise InputError(f"{name}: not a readable {fmt} file: {_one_line(exc)}") from None
    bar_part = parts[chosen[0]] if chosen else stream.Part()
    return Piece(name, make_notes(pitch, start, end, velocity, source=name), lambda: _score_bars(bar_part, name=name))


def _score_bars(part: object, *, name: str) -> Bars:
    """A music21 part's bars (see :func:`bars_from_measures`)."""
    from music21 import stream  # noqa: PLC0415

    try:
        measures = list(part.getElementsByClass(stream.Measure))  # type: ignore[attr-defined]
        described = [(int(m.number or 0), float(m.offset), float(m.duration.quarterLength)) for m in measures]
        first_bar_beats = float(measures[0].barDuration.quarterLength) if measures else 0.0
    except Exception as exc:  # as above: music21's many exception types
        raise InputError(f"{name}: cannot read its bars: {_one_line(exc)}") from None
    return bars_from_measures(described, first_bar_beats, name=name)


# --- bars ---------------------------------------------------------------------------------------------

BarRange = tuple[int, int]


def bars_from_time_signatures(
    changes: Sequence[tuple[float, int, int]], end_beat: float, *, name: str = "notes"
) -> Bars:
    """Bar lines from time-signature changes ``(beat, numerator, denominator)``, bar 1 starting at beat 0.

    A bar lasts ``numerator * 4 / denominator`` beats (quarter notes). Before the first change the meter is
    4/4 (the MIDI default); of several changes on one beat the last wins. A change that falls inside a bar
    ends that bar early and starts a new one, as sequencers do. Bars run until the first bar line at or
    after ``end_beat`` (at least one bar). Raises :class:`InputError` for a meter that is not n/1 .. n/64
    with n >= 1, and :class:`LimitError` past ``defaults.MAX_BARS`` bars.
    """
    meters: dict[float, float] = {0.0: 4.0}
    for beat, numerator, denominator in sorted(changes, key=lambda change: change[0]):
        if (
            numerator < 1
            or denominator < 1
            or denominator > MAX_TIME_SIGNATURE_DENOMINATOR
            or denominator & (denominator - 1)
        ):
            raise InputError(
                f"{name}: time signature {numerator}/{denominator} at beat {beat:g} is not supported "
                f"(numerator >= 1, denominator a power of two up to {MAX_TIME_SIGNATURE_DENOMINATOR})"
            )
        meters[float(beat)] = numerator * 4.0 / denominator
    starts = sorted(beat for beat in meters if beat < end_beat) or [0.0]
    segments: list[np.ndarray] = []
    count = 0
    for i, start in enumerate(starts):
        length = meters[start]
        stop = starts[i + 1] if i + 1 < len(starts) else max(end_beat, start + length)
        n = max(1, math.ceil((stop - start) / length - BAR_TOLERANCE))
        count += n
        if count > defaults.MAX_BARS:
            raise LimitError(f"{name}: more than {defaults.MAX_BARS} bars, the limit")
        segments.append(start + length * np.arange(n))
    return Bars(np.append(np.concatenate(segments), starts[-1] + length * n))


def bars_from_measures(
    measures: Sequence[tuple[int, float, float]], first_bar_beats: float, *, name: str = "score"
) -> Bars:
    """Bar lines from a score's measures ``(number, offset, length)`` in beats, in score order.

    Bars are counted the way musicians count them, so they match a normally numbered score's own bar
    numbers: a first measure shorter than ``first_bar_beats`` (the bar its time signature gives) is a pickup,
    bar 0, and the next measure is bar 1; otherwise the first measure is bar 1 (whatever number the file
    gives it: music21 numbers every ABC tune's first measure 0). When the score numbers its measures, a
    measure with no number of its own (music21's 0 after the first, e.g. the part of a bar after a mid-bar
    repeat sign) or the same number as the one before (a split measure such as 12 and 12a) continues the
    bar before it. Each bar ends where the next begins; the last at its measure's end.
    """
    kept = [m for m in measures if m[2] > 0]
    if not kept:
        raise InputError(f"{name}: holds no measures, so it has no bars; give a beat range instead")
    numbered = any(measure_number for measure_number, _, _ in kept)
    starts = [kept[0][1]]
    for (previous, _, _), (measure_number, offset, _) in itertools.pairwise(kept):
        if offset <= starts[-1] or (numbered and (measure_number == 0 or measure_number == previous)):
            continue
        starts.append(offset)
    end = max(offset + length for _, offset, length in kept)
    pickup = kept[0][2] < first_bar_beats - BAR_TOLERANCE and len(starts) > 1
    return Bars(np.asarray([*starts, end], dtype=np.float64), first=0 if pickup else 1)


def regular_bars(beats_per_bar: float, end_beat: float) -> Bars:
    """Bars of ``beats_per_bar`` beats from beat 0 until ``end_beat`` (at least one), for music without metre."""
    length = number(beats_per_bar, "beats_per_bar", above=0, at_most=defaults.MAX_BEATS)
    count = max(1, math.ceil(number(end_beat, "end_beat", at_least=0) / length))
    if count > defaults.MAX_BARS:
        raise LimitError(
            f"beats_per_bar={length:g} cuts {end_beat:g} beats into {count} bars; at most {defaults.MAX_BARS} are allowed"
        )
    return Bars(np.arange(count + 1) * length)


def check_bar_range(bars: Sequence[int]) -> BarRange:
    """``bars`` as a validated (first, last) pair of bar numbers, inclusive; bar 0 is a pickup."""
    if (
        not isinstance(bars, Sequence)
        or len(bars) != 2
        or not all(isinstance(b, int) and not isinstance(b, bool) for b in bars)
    ):
        raise ParameterError(f"bars={bars!r} must be a (first, last) pair of bar numbers")
    first, last = bars
    if first < 0:
        raise ParameterError(f"bars={format_bar_range(bars)} must start at bar 0 (a pickup) or later")
    if last < first:
        raise ParameterError(f"bars={format_bar_range(bars)} must not end before it starts")
    return first, last


def format_bar_range(bars: Sequence[int]) -> str:
    """'5-8', or '5' for a single bar."""
    first, last = bars
    return f"{first}" if first == last else f"{first}-{last}"


def bar_span(bars: Bars, bar_range: BarRange, *, name: str = "notes") -> tuple[float, float]:
    """The beats [start, end) of bars ``first..last`` (inclusive), or :class:`InputError` naming the piece's bars."""
    first, last = check_bar_range(bar_range)
    shown = format_bar_range(bar_range)
    if first == 0 and bars.first != 0:
        raise InputError(f"{name}: bars={shown}: the piece has no pickup bar 0; it has {bars.describe()}")
    if last > bars.last:
        raise InputError(f"{name}: bars={shown}: the piece has {bars.describe()}")
    return float(bars.bounds[first - bars.first]), float(bars.bounds[last - bars.first + 1])


def bar_slices(bars: Bars, bars_per_slice: int) -> list[BarRange]:
    """Consecutive bar ranges of ``bars_per_slice`` full bars covering the whole piece.

    A pickup joins the first slice (bars 0..N). A last slice shorter than half of N bars joins the slice
    before it (so 9 bars in fours give 1-4 and 5-9, 10 bars give 1-4, 5-8 and 9-10).
    """
    ranges = [(a, min(a + bars_per_slice - 1, bars.last)) for a in range(1, bars.last + 1, bars_per_slice)]
    tail = ranges[-1][1] - ranges[-1][0] + 1
    if len(ranges) > 1 and 2 * tail < bars_per_slice:
        ranges[-2:] = [(ranges[-2][0], ranges[-1][1])]
    ranges[0] = (bars.first, ranges[0][1])
    return ranges


def _no_bars(name: str) -> Bars:
    raise InputError(f"{name}: a JSON note list has no bars; give a beat range instead")


# --- shared helpers ------------------------------------------------------------------------------------


def _choose(tracks: TrackSelector, names: list[str], *, name: str, kind: str) -> list[int]:
    """Indices of the chosen tracks/parts (all when ``tracks`` is None)."""
    if tracks is None:
        return list(range(len(names)))
    listing = ", ".join(f"{i} {n!r}" if n else str(i) for i, n in enumerate(names))
    chosen: list[int] = []
    for selector in tracks:
        if isinstance(selector, int) or (isinstance(selector, str) and selector.isdigit()):
            index = int(selector)
            if not 0 <= index < len(names):
                raise InputError(f"{name}: {kind} {index} does not exist; it has {kind}s {listing}")
        else:
            matches = [i for i, n in enumerate(names) if n.casefold() == str(selector).casefold()]
            if not matches:
                raise InputError(f"{name}: no {kind} named {selector!r}; it has {kind}s {listing}")
            index = matches[0]
        if index not in chosen:
            chosen.append(index)
    return chosen


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = [
    "FORMATS",
    "Bars",
    "Piece",
    "bar_slices",
    "bar_span",
    "bars_from_measures",
    "bars_from_time_signatures",
    "check_bar_range",
    "format_bar_range",
    "format_of",
    "music_files",
    "read_file_bytes",
    "read_notes",
    "read_notes_bytes",
    "read_piece",
    "read_piece_bytes",
]
