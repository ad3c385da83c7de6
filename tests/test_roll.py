import numpy as np
import pytest

from rollmatch import ParameterError, make_notes, piano_roll, read_notes
from rollmatch.roll import note_steps

from .conftest import chorale_path


def test_binary_roll_marks_each_note_over_its_steps():
    notes = make_notes([60, 64], [0.0, 1.0], [1.0, 1.5])
    roll = piano_roll(notes, steps_per_beat=4)
    assert roll.shape == (128, 6) and roll.dtype == np.float32
    assert roll[60].tolist() == [1, 1, 1, 1, 0, 0]
    assert roll[64].tolist() == [0, 0, 0, 0, 1, 1]
    assert roll.sum() == 6


def test_sixteenths_and_triplets_are_exact_at_the_default_resolution():
    sixteenths = make_notes([60] * 4, [0, 0.25, 0.5, 0.75], [0.25, 0.5, 0.75, 1.0])
    triplets = make_notes([62] * 3, [0, 1 / 3, 2 / 3], [1 / 3, 2 / 3, 1.0])
    on, off = note_steps(sixteenths, 12)
    assert on.tolist() == [0, 3, 6, 9] and off.tolist() == [3, 6, 9, 12]
    on, off = note_steps(triplets, 12)
    assert on.tolist() == [0, 4, 8] and off.tolist() == [4, 8, 12]


def test_a_note_never_vanishes():
    # A zero-length note and a 1/64-beat note each still occupy the step where they start.
    notes = make_notes([60, 72], [0.5, 2.0], [0.5, 2.0 + 1 / 64])
    roll = piano_roll(notes, steps_per_beat=4)
    assert roll[60, 2] == 1 and roll[60].sum() == 1
    assert roll[72, 8] == 1 and roll[72].sum() == 1


def test_times_round_half_up_so_an_offset_never_changes_the_rounding():
    # 1/8 beat at 12 steps per beat is 1.5 steps: it must round the same way at every whole-step offset.
    for offset_steps in range(4):
        start = offset_steps / 12 + 0.125
        on, _ = note_steps(make_notes([60], [start], [start + 1]), 12)
        assert on[0] == offset_steps + 2


def test_overlapping_notes_take_the_maximum_not_the_sum():
    notes = make_notes([60, 60], [0.0, 0.5], [1.0, 1.5], velocity=[100, 40])
    binary = piano_roll(notes, steps_per_beat=2)
    assert binary[60].tolist() == [1, 1, 1]
    weighted = piano_roll(notes, steps_per_beat=2, velocity=True)
    assert weighted[60].tolist() == pytest.approx([100 / 127, 100 / 127, 40 / 127])


def test_empty_notes_give_an_empty_roll():
    assert piano_roll(make_notes([], [], [])).shape == (128, 0)


@pytest.mark.parametrize("value", [0, -1, 1.5, 97, True])
def test_steps_per_beat_is_validated(value):
    with pytest.raises(ParameterError, match="steps_per_beat"):
        piano_roll(make_notes([60], [0], [1]), steps_per_beat=value)


def test_chorale_roll_holds_four_voices():
    notes = read_notes(chorale_path("bwv269"), end_beat=4)
    roll = piano_roll(notes)
    assert roll.shape == (128, 48)
    # Four voices sound at almost every step of a chorale's opening bar.
    assert np.median((roll > 0).sum(axis=0)) == 4
