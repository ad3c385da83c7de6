"""Readers: MIDI, MusicXML, Humdrum, ABC and JSON note lists → note arrays in beats.

This is the parse boundary: every third-party exception is caught here and re-raised as
:class:`~rollmatch.errors.InputError` with the file's name, and every size cap is checked before
anything proportional to the input is allocated.

Bars: a file is read as a :class:`Piece`, its notes plus where its bars fall (a :class:`~rollmatch.bars.Bars`,
the model in :mod:`rollmatch.bars`). Scores take their bars from music21's measures
(:func:`~rollmatch.bars.bars_from_measures`); a MIDI file from its time-signature meta events
(:func:`~rollmatch.bars.bars_from_time_signatures`).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import defaults
from .bars import Bars, bars_from_measures, bars_from_time_signatures
from .errors import EmptyInputError, InputError, LimitError
from .notes import make_notes, notes_from_records, select_beats, span_beats

#: File suffix → format name: every suffix rollmatch reads (in any case), the one map of formats and suffixes.
FORMATS = {
    ".mid": "midi",
    ".midi": "midi",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".mxl": "musicxml",
    ".krn": "humdrum",
    ".abc": "abc",
    ".json": "json",
}


def suffixes_of(fmt: str) -> tuple[str, ...]:
    """Every suffix read as format ``fmt`` (a value of :data:`FORMATS`), in :data:`FORMATS`' order."""
    return tuple(suffix for suffix, f in FORMATS.items() if f == fmt)


#: Format name → the suffix rollmatch names a file of that format with (a temporary copy of sent bytes, a file
#: sent without a name of its own, the MIDI file a search writes beside its MusicXML): its first in FORMATS.
SUFFIXES = {fmt: suffixes_of(fmt)[0] for fmt in FORMATS.values()}
#: Compressed MusicXML, a zip archive: read, never written.
COMPRESSED_MUSICXML = ".mxl"
_MUSIC21_FORMATS = {"musicxml", "humdrum", "abc"}
DRUM_CHANNEL = 9  # General MIDI channel 10, counted from 0

TrackSelector = Sequence[int | str] | None


def format_of(path: str | os.PathLike[str]) -> str:
    """The format name for a file's suffix, or :class:`InputError` naming the supported ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        supported = " ".join(sorted(FORMATS))
        raise InputError(f"{Path(path).name}: unknown file type {suffix or '(none)'!r}; supported: {supported}")
    return FORMATS[suffix]


def suffix_for(fmt: str, data: bytes = b"") -> str:
    """The suffix to name a file holding ``data`` in format ``fmt`` (a value of :data:`FORMATS`) with:
    :data:`SUFFIXES`' own, or .mxl for MusicXML bytes that are a zip archive (compressed MusicXML)."""
    return COMPRESSED_MUSICXML if fmt == "musicxml" and data[:2] == b"PK" else SUFFIXES[fmt]


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
    if fmt not in SUFFIXES:
        raise InputError(f"{name}: unknown format {fmt!r}; supported: {', '.join(sorted(SUFFIXES))}")
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
    with tempfile.TemporaryDirectory(prefix="rollmatch-") as tmp:
        path = Path(tmp) / f"fragment{suffix_for(fmt, data)}"
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
    except Exception as exc:  # noqa: BLE001  (mido raises OSError, EOFError, ValueError, KeyError...)
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
            tick += message.time  # type: ignore[attr-defined]  # every mido message has a time; its stubs lack it
            if getattr(message, "type", None) == "time_signature":
                changes.append((tick / resolution, int(message.numerator), int(message.denominator)))  # type: ignore[attr-defined]
    return sorted(changes, key=lambda change: change[0])


def _track_name(track: Sequence[object]) -> str:
    for message in track:
        if getattr(message, "type", None) == "track_name":
            return str(getattr(message, "name", ""))
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
                    velocity.append(int(vel) if vel else defaults.VELOCITY)
                if len(pitch) > defaults.MAX_NOTES:
                    raise LimitError(f"{name}: more than {defaults.MAX_NOTES} notes, the limit")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (music21 raises many unrelated types on malformed scores)
        raise InputError(f"{name}: not a readable {fmt} file: {_one_line(exc)}") from None
    bar_part = parts[chosen[0]] if chosen else stream.Part()
    return Piece(name, make_notes(pitch, start, end, velocity, source=name), lambda: _score_bars(bar_part, name=name))


def _score_bars(part: object, *, name: str) -> Bars:
    """A music21 part's bars (see :func:`bars_from_measures`)."""
    from music21 import stream  # noqa: PLC0415  (music21 loads slowly: only when a score is read)

    try:
        measures = list(part.getElementsByClass(stream.Measure))  # type: ignore[attr-defined]
        described = [(int(m.number or 0), float(m.offset), float(m.duration.quarterLength)) for m in measures]
        first_bar_beats = float(measures[0].barDuration.quarterLength) if measures else 0.0
    except Exception as exc:  # noqa: BLE001  (as above: music21's many exception types)
        raise InputError(f"{name}: cannot read its bars: {_one_line(exc)}") from None
    return bars_from_measures(described, first_bar_beats, name=name)


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
    "COMPRESSED_MUSICXML",
    "FORMATS",
    "SUFFIXES",
    "Piece",
    "TrackSelector",
    "format_of",
    "music_files",
    "read_file_bytes",
    "read_notes",
    "read_notes_bytes",
    "read_piece",
    "read_piece_bytes",
    "suffix_for",
    "suffixes_of",
]
