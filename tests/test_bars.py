"""The bar model: bar lines from time signatures and measures, regular bars, bar ranges, spans and slices."""

import numpy as np
import pytest

from rollmatch import InputError, LimitError, ParameterError, defaults
from rollmatch.bars import (
    Bars,
    bar_slices,
    bar_span,
    bars_from_measures,
    bars_from_time_signatures,
    check_bar_range,
    parse_bar_range,
    regular_bars,
)


def test_bars_from_time_signatures_by_hand():
    # 4/4 twice, 3/4 from beat 8 (cut short by the change at 13, mid-bar), then 7/8 = 3.5 beats.
    bars = bars_from_time_signatures([(8, 3, 4), (13, 7, 8)], 20)
    assert bars.first == 1 and bars.last == 6 and bars.bounds.tolist() == [0, 4, 8, 11, 13, 16.5, 20]
    # No time signature: 4/4; the last bar line is the first at or after the end.
    assert bars_from_time_signatures([], 10).bounds.tolist() == [0, 4, 8, 12]
    assert bars_from_time_signatures([(0, 3, 8)], 3).bounds.tolist() == [0, 1.5, 3]
    # Of two changes on one beat the last wins; a silent piece still has bar 1.
    assert bars_from_time_signatures([(0, 2, 4), (0, 6, 8)], 0).bounds.tolist() == [0, 3]
    # A change after the end lays out nothing.
    assert bars_from_time_signatures([(0, 2, 2), (40, 3, 4)], 8).bounds.tolist() == [0, 4, 8]


@pytest.mark.parametrize("meter", [(0, 4), (3, 6), (3, 128)])
def test_unsupported_time_signatures_are_refused(meter):
    with pytest.raises(InputError, match=f"time signature {meter[0]}/{meter[1]} at beat 2 is not supported"):
        bars_from_time_signatures([(2, *meter)], 8)


def test_too_many_bars_are_refused(monkeypatch):
    monkeypatch.setattr(defaults, "MAX_BARS", 100)
    assert bars_from_time_signatures([(0, 1, 4)], 100).last == 100
    with pytest.raises(LimitError, match="more than 100 bars"):
        bars_from_time_signatures([(0, 1, 16)], 100)


def test_bars_from_measures_count_like_musicians():
    # A 1-beat pickup in 3/4: bar 0, then bars 1, 2.
    pickup = bars_from_measures([(0, 0, 1), (1, 1, 3), (2, 4, 3)], 3)
    assert pickup.first == 0 and pickup.last == 2 and pickup.bounds.tolist() == [0, 1, 4, 7]
    # A complete first measure is bar 1 whatever its number (music21 numbers ABC tunes from 0).
    complete = bars_from_measures([(0, 0, 3), (1, 3, 3)], 3)
    assert complete.first == 1 and complete.bounds.tolist() == [0, 3, 6]
    # Unnumbered (0) and repeated numbers continue the bar before: a bar split by a repeat sign, 12/12a.
    split = bars_from_measures([(1, 0, 4), (2, 4, 3), (0, 7, 1), (3, 8, 4), (3, 12, 4), (4, 16, 4)], 4)
    assert split.first == 1 and split.bounds.tolist() == [0, 4, 8, 16, 20]
    # A score without numbers counts every measure; empty measures are skipped.
    plain = bars_from_measures([(0, 0, 2), (0, 2, 2), (0, 4, 0), (0, 4, 2)], 2)
    assert plain.first == 1 and plain.bounds.tolist() == [0, 2, 4, 6]
    with pytest.raises(InputError, match="holds no measures"):
        bars_from_measures([], 4)


def test_bar_span_names_the_pieces_bars():
    bars = bars_from_time_signatures([(0, 3, 4)], 24)  # 8 bars of 3 beats
    assert bar_span(bars, (1, 1)) == (0, 3) and bar_span(bars, (5, 8)) == (12, 24)
    with pytest.raises(InputError, match=r"^bwv\.mid: bars=9-12: the piece has 8 bars$"):
        bar_span(bars, (9, 12), name="bwv.mid")
    with pytest.raises(InputError, match="bars=0-3: the piece has no pickup bar 0; it has 8 bars"):
        bar_span(bars, (0, 3))
    pickup = Bars(np.array([0.0, 1, 4, 7]), first=0)
    assert (
        bar_span(pickup, (0, 0)) == (0, 1) and bar_span(pickup, (0, 2)) == (0, 7) and bar_span(pickup, (2, 2)) == (4, 7)
    )
    with pytest.raises(InputError, match="bars=3: the piece has 2 bars after a pickup bar 0"):
        bar_span(pickup, (3, 3))


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        ((5, 3), "bars=5-3 must not end before it starts"),
        ((-1, 2), "bars=-1-2 must start at bar 0"),
        ((1, True), "must be a .first, last. pair"),
        ("5-8", "must be a .first, last. pair"),
    ],
)
def test_bar_ranges_are_checked(bars, message):
    with pytest.raises(ParameterError, match=message):
        check_bar_range(bars)


def test_bar_slices_policy():
    ten = bars_from_time_signatures([], 40)
    assert bar_slices(ten, 4) == [(1, 4), (5, 8), (9, 10)]  # a tail of half a slice stays
    assert bar_slices(bars_from_time_signatures([], 36), 4) == [(1, 4), (5, 9)]  # a shorter one joins
    assert bar_slices(ten, 1) == [(b, b) for b in range(1, 11)]
    assert bar_slices(ten, 16) == [(1, 10)]
    pickup = Bars(np.arange(0.0, 12), first=0)  # bars 0-10
    assert bar_slices(pickup, 4) == [(0, 4), (5, 8), (9, 10)]


def test_regular_bars_cover_the_piece():
    bars = regular_bars(3, 10)
    assert bars.starts.tolist() == [0, 3, 6, 9] and bars.numbers.tolist() == [1, 2, 3, 4]
    assert regular_bars(4, 0).starts.tolist() == [0]  # an empty piece still has its first bar


@pytest.mark.parametrize(
    ("value", "message"), [(0, "beats_per_bar=0 must be"), (float("nan"), "beats_per_bar=nan must be")]
)
def test_regular_bars_refuse_a_bad_length(value, message):
    with pytest.raises(ParameterError, match=message):
        regular_bars(value, 8)


def test_window_keeps_the_running_bar_and_counts_from_the_window():
    bars = Bars(np.array([0.0, 1.0, 4.0, 7.0, 10.0, 13.0]), first=0)  # a one-beat pickup, then 3/4
    window = bars.window(5.0, 11.0)
    assert window.starts.tolist() == [-1.0, 2.0, 5.0] and window.numbers.tolist() == [2, 3, 4]
    assert window.count(6.0) == 3
    assert window.count(5.0) == 2  # bar 4 starts where the window ends
    assert bars.window(0.0, 4.0).starts.tolist() == [0.0, 1.0] and bars.window(0.0, 4.0).count(4.0) == 2


def test_bar_ranges_are_parsed_from_text():
    assert parse_bar_range("5") == (5, 5) and parse_bar_range(" 5-8 ") == (5, 8) and parse_bar_range("0 - 2") == (0, 2)
    for text in ("two", "-1", "5-", "", "\u00b2"):  # '²' is a digit to str.isdigit, not to int
        with pytest.raises(ParameterError, match="is not a bar number or range like 5 or 5-8"):
            parse_bar_range(text)
