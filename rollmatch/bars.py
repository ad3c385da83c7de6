"""Bars: where each bar of a piece begins, in beats, from its own time signatures, for drawing bar lines.

MusicXML, Humdrum and ABC files give their measures directly (through music21), so pickups and changes of
metre come out as written, and bars keep their printed numbers (a pickup is bar 0). A MIDI file gives its
time-signature events (4/4 until the first one, as the MIDI standard says). A JSON note list states no metre,
so a drawing falls back to regular bars of ``beats_per_bar``.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import defaults
from .checks import number
from .errors import InputError, LimitError
from .readers import _check_size, _one_line, format_of

#: Bars one piece may have; bounds what a MIDI file of tiny bars can make us allocate.
MAX_BARS = 100_000


@dataclass(frozen=True)
class Bars:
    """Bar starts (beats, increasing, shape (n,)) and the number of the first bar; later bars count up."""

    starts: np.ndarray
    first_number: int = 1

    @property
    def numbers(self) -> np.ndarray:
        """The bar number of each start, shape (n,)."""
        return self.first_number + np.arange(self.starts.size)

    def window(self, start_beat: float, end_beat: float) -> Bars:
        """The bars sounding in [start_beat, end_beat), with beats counted from start_beat. The bar already
        running at start_beat is kept with a start at or before 0, so that numbering and counting stay right."""
        running = max(int(np.searchsorted(self.starts, start_beat, side="right")) - 1, 0)
        stop = int(np.searchsorted(self.starts, end_beat, side="left"))
        return Bars(self.starts[running:stop] - start_beat, self.first_number + running)

    def count(self, end_beat: float) -> int:
        """How many bars overlap [0, end_beat)."""
        return int(np.count_nonzero(self.starts < end_beat) - max(np.count_nonzero(self.starts <= 0) - 1, 0))


def regular_bars(beats_per_bar: float, end_beat: float) -> Bars:
    """Bars of ``beats_per_bar`` beats from beat 0 until ``end_beat``."""
    length = number(beats_per_bar, "beats_per_bar", above=0, at_most=defaults.MAX_BEATS)
    count = max(1, math.ceil(number(end_beat, "end_beat", at_least=0) / length))
    if count > MAX_BARS:
        raise LimitError(f"beats_per_bar={length:g} cuts {end_beat:g} beats into {count} bars; at most {MAX_BARS} are allowed")
    return Bars(np.arange(count) * length)


def bars_of(path: str | os.PathLike[str] | None, end_beat: float, *, beats_per_bar: float | None = None) -> Bars:
    """The bars to draw for a file: regular bars of ``beats_per_bar`` when given, else the file's own, else
    regular bars of :data:`~rollmatch.defaults.BEATS_PER_BAR` (no file, or a format without metre)."""
    if beats_per_bar is not None:
        return regular_bars(beats_per_bar, end_beat)
    own = None if path is None else read_bars(path)
    return own if own is not None else regular_bars(defaults.BEATS_PER_BAR, end_beat)


def read_bars(path: str | os.PathLike[str]) -> Bars | None:
    """The bars a file writes down, or None for a format without metre (a JSON note list).

    Raises :class:`InputError` when the file cannot be read.
    """
    name = Path(path).name
    fmt = format_of(path)
    if fmt == "json":
        return None
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_size(size, name)
    if fmt == "midi":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return _midi_bars(data, name=name)
    return _score_bars(Path(path), fmt, name=name)


def _midi_bars(data: bytes, *, name: str) -> Bars:
    """Bars from the time-signature events of a MIDI file: a new bar at every event, 4/4 before the first."""
    import mido  # noqa: PLC0415

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises many unrelated types on corrupt files
        raise InputError(f"{name}: not a readable MIDI file: {_one_line(exc)}") from None
    resolution = midi.ticks_per_beat
    if not 0 < resolution < 0x8000:
        raise InputError(f"{name}: MIDI time division {resolution} is not ticks per beat (SMPTE timing is not supported)")
    changes: dict[int, float] = {0: 4.0}
    last_tick = 0
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "time_signature" and message.numerator > 0:
                changes[tick] = message.numerator * 4.0 / message.denominator
        last_tick = max(last_tick, tick)
    end = last_tick / resolution
    if end > defaults.MAX_BEATS:
        raise LimitError(f"{name}: runs past beat {defaults.MAX_BEATS:g}, the limit")
    ticks = sorted(changes)
    starts: list[np.ndarray] = []
    for at, until in zip(ticks, [*ticks[1:], max(last_tick, ticks[-1] + 1)], strict=True):
        begin, stop = at / resolution, until / resolution
        count = max(1, math.ceil((stop - begin) / changes[at]))
        if sum(s.size for s in starts) + count > MAX_BARS:
            raise LimitError(f"{name}: more than {MAX_BARS} bars, the limit")
        starts.append(begin + np.arange(count) * changes[at])
    return Bars(np.concatenate(starts))


def _score_bars(path: Path, fmt: str, *, name: str) -> Bars:
    """Bars from the measures of a score's first part, with their printed numbers."""
    from music21 import converter, stream  # noqa: PLC0415  (slow import, score formats only)

    try:
        parsed = converter.parseFile(str(path), format=fmt, forceSource=True, storePickle=False)
        if isinstance(parsed, stream.Opus):
            if not parsed.scores:
                raise InputError(f"{name}: holds no pieces")
            parsed = parsed.scores[0]
        part = parsed.parts[0] if isinstance(parsed, stream.Score) and parsed.parts else parsed
        measures = list(part.getElementsByClass(stream.Measure))
        starts = np.array(sorted({float(m.offset) for m in measures}), dtype=np.float64)
        first = int(measures[0].number) if measures else 1
    except InputError:
        raise
    except Exception as exc:  # music21 raises many unrelated types on malformed scores
        raise InputError(f"{name}: not a readable {fmt} file: {_one_line(exc)}") from None
    if starts.size > MAX_BARS:
        raise LimitError(f"{name}: more than {MAX_BARS} bars, the limit")
    return Bars(starts if starts.size else np.zeros(1), first)
