"""The bar model: where a piece's bars fall, in beats, and the bar ranges a user names.

A :class:`Bars` is laid out from a MIDI file's time signatures (:func:`bars_from_time_signatures`), from a
score's measures (:func:`bars_from_measures`) or, for music without metre, as :func:`regular_bars`. Bar
numbers count the way musicians count: bar 1 is the first full bar and a pickup (anacrusis) before it is
bar 0. A :data:`BarRange` is a (first, last) pair of bar numbers, inclusive; :func:`bar_span` turns one into
beats and :func:`bar_slices` cuts a piece into them. Reading the files is :mod:`rollmatch.readers`'s job.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import defaults
from .checks import number
from .errors import InputError, LimitError, ParameterError

#: Bars ``(first, last)`` by number, inclusive; bar 0 is a pickup.
BarRange = tuple[int, int]


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
        return int(np.count_nonzero(starts < end_beat)) - max(int(np.count_nonzero(starts <= 0)) - 1, 0)

    def describe(self) -> str:
        """'8 bars', or '8 bars after a pickup bar 0'."""
        full = self.last
        text = f"{full} bar{'' if full == 1 else 's'}"
        return f"{text} after a pickup bar 0" if self.first == 0 else text


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
            or denominator > defaults.MAX_TIME_SIGNATURE_DENOMINATOR
            or denominator & (denominator - 1)
        ):
            raise InputError(
                f"{name}: time signature {numerator}/{denominator} at beat {beat:g} is not supported "
                f"(numerator >= 1, denominator a power of two up to {defaults.MAX_TIME_SIGNATURE_DENOMINATOR})"
            )
        meters[float(beat)] = numerator * 4.0 / denominator
    starts = sorted(beat for beat in meters if beat < end_beat) or [0.0]
    segments: list[np.ndarray] = []
    count = 0
    for i, start in enumerate(starts):
        length = meters[start]
        stop = starts[i + 1] if i + 1 < len(starts) else max(end_beat, start + length)
        n = max(1, math.ceil((stop - start) / length - defaults.BAR_TOLERANCE))
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
    pickup = kept[0][2] < first_bar_beats - defaults.BAR_TOLERANCE and len(starts) > 1
    return Bars(np.asarray([*starts, end], dtype=np.float64), first=0 if pickup else 1)


def regular_bars(beats_per_bar: float, end_beat: float) -> Bars:
    """Bars of ``beats_per_bar`` beats from beat 0 until ``end_beat`` (at least one), for music without metre."""
    length = number(beats_per_bar, "beats_per_bar", above=0, at_most=defaults.MAX_BEATS)
    count = max(1, math.ceil(number(end_beat, "end_beat", at_least=0) / length))
    if count > defaults.MAX_BARS:
        raise LimitError(
            f"beats_per_bar={length:g} cuts {end_beat:g} beats into {count} bars; "
            f"at most {defaults.MAX_BARS} are allowed"
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


def parse_bar_range(text: str) -> BarRange:
    """'5-8' or '5' as a (first, last) pair of bar numbers; :class:`ParameterError` for anything else (the
    order is :func:`check_bar_range`'s to check)."""
    first, dash, last = (part.strip() for part in str(text).partition("-"))
    if not _is_number(first) or (dash and not _is_number(last)):
        raise ParameterError(f"{text!r} is not a bar number or range like 5 or 5-8")
    return int(first), int(last) if dash else int(first)


def _is_number(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts digits such as '²' that int() refuses.
    return text.isascii() and text.isdigit()


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


__all__ = [
    "BarRange",
    "Bars",
    "bar_slices",
    "bar_span",
    "bars_from_measures",
    "bars_from_time_signatures",
    "check_bar_range",
    "format_bar_range",
    "parse_bar_range",
    "regular_bars",
]
