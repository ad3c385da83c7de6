import numpy as np
import pytest

from rollmatch import (
    InputError,
    LimitError,
    ParameterError,
    defaults,
    make_notes,
    notes_from_records,
    select_beats,
    transform_notes,
)
from rollmatch.notes import perturb_notes, pitch_name, polyphony, snap_notes, sort_notes, split_voices

from .conftest import VOICES, chorale_voices


def test_make_notes_sorts_by_start_then_pitch():
    notes = make_notes([67, 60, 64], [1.0, 0.0, 0.0], [2.0, 1.0, 1.0])
    assert notes["pitch"].tolist() == [60, 64, 67]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"pitch": 128, "start": 0, "end": 1}, "pitch must be within 0-127"),
        ({"pitch": 60.5, "start": 0, "end": 1}, "whole number"),
        ({"pitch": 60, "start": -1, "end": 1}, "start must be >= 0"),
        ({"pitch": 60, "start": 1, "end": 1}, "end must be > start"),
        ({"pitch": 60, "start": 2, "end": 1}, "end must be >= start"),
        ({"pitch": 60, "start": float("nan"), "end": 1}, "finite"),
        ({"pitch": 60, "start": 0, "end": 1, "velocity": 0}, "velocity must be within 1-127"),
        ({"pitch": 60, "start": 0}, "missing 'end'"),
        ({"pitch": 60, "start": 0, "end": 1, "loud": True}, "unknown field 'loud'"),
        ({"pitch": "C4", "start": 0, "end": 1}, "must be a number"),
        ({"pitch": True, "start": 0, "end": 1}, "must be a number"),
    ],
)
def test_note_records_name_the_problem(record, message):
    with pytest.raises(InputError, match=message):
        notes_from_records([record], source="frag.json")


def test_note_records_must_be_a_list():
    with pytest.raises(InputError, match="expected a list"):
        notes_from_records({"pitch": 60})


def test_beats_past_the_cap_are_refused():
    with pytest.raises(LimitError, match="limit"):
        notes_from_records([{"pitch": 60, "start": 0, "end": defaults.MAX_BEATS + 1}])


def test_select_beats_clips_and_moves_to_zero():
    notes = make_notes([60, 62, 64, 65], [0.0, 1.5, 3.0, 5.0], [2.0, 2.5, 4.5, 6.0])
    window = select_beats(notes, 2.0, 4.0)
    assert window["pitch"].tolist() == [62, 64]
    assert window["start"].tolist() == [0.0, 1.0]
    assert window["end"].tolist() == [0.5, 2.0]


def test_select_beats_validates_the_range():
    notes = make_notes([60], [0], [1])
    with pytest.raises(ParameterError, match="end_beat=1"):
        select_beats(notes, 2, 1)
    with pytest.raises(ParameterError, match="start_beat=-1"):
        select_beats(notes, -1, 1)


def test_transform_notes_transposes_stretches_and_shifts():
    notes = make_notes([60, 64], [0.0, 1.0], [1.0, 2.0])
    out = transform_notes(notes, transpose=-3, stretch=1.5, shift_beats=2)
    assert out["pitch"].tolist() == [57, 61]
    assert out["start"].tolist() == [2.0, 3.5] and out["end"].tolist() == [3.5, 5.0]
    with pytest.raises(ParameterError, match="stretch=0 must be > 0"):
        transform_notes(notes, stretch=0)
    with pytest.raises(InputError, match="outside MIDI pitch"):
        transform_notes(notes, transpose=70)


def test_perturb_drops_and_adds_the_requested_share(chorale_excerpts):
    notes = chorale_excerpts[0]
    noisy = perturb_notes(notes, np.random.default_rng(0), drop=0.1, add=0.1)
    kept = {tuple(n) for n in notes.tolist()} & {tuple(n) for n in noisy.tolist()}
    assert len(kept) >= notes.size - round(0.1 * notes.size)
    assert noisy.size == notes.size  # as many dropped as added
    assert noisy["pitch"].min() >= notes["pitch"].min() and noisy["pitch"].max() <= notes["pitch"].max()


def test_pitch_names_are_scientific_with_sharps():
    assert [pitch_name(p) for p in (0, 21, 59, 60, 61, 70, 127)] == ["C-1", "A0", "B3", "C4", "C#4", "A#4", "G9"]


def test_snap_notes_rounds_to_ticks_and_keeps_every_note_at_least_a_tick_long():
    notes = make_notes([60, 62, 64], [0.0, 1 / 3 + 1e-9, 2.0004], [0.0, 2 / 3, 2.0006], source="test")
    out = snap_notes(notes, 480)
    assert (out["start"] * 480).tolist() == [0, 160, 960] and (out["end"] * 480).tolist() == [1, 320, 961]
    assert np.array_equal(snap_notes(out, 480), out)  # already on the grid: unchanged


def test_split_voices_follows_a_chorales_four_parts():
    parts = chorale_voices("bwv269", 16.0)
    notes = sort_notes(np.concatenate([parts[v] for v in VOICES]))
    voices = split_voices(notes)
    assert sorted(set(voices.tolist())) == [0, 1, 2, 3]
    for k, name in enumerate(VOICES):  # soprano 0 ... bass 3, every note in its own part's voice
        assert sort_notes(notes[voices == k]).tobytes() == sort_notes(parts[name]).tobytes()


def test_split_voices_by_hand():
    # a held C4 under a rising line, then a three-note chord: the line stays voice 0, the held note voice 1
    notes = make_notes([60, 67, 69, 71, 72, 64, 55], [0, 0, 1, 2, 4, 4, 4], [4, 1, 2, 4, 5, 5, 5])
    assert split_voices(notes).tolist() == [1, 0, 0, 0, 2, 1, 0]
    assert polyphony(notes) == 3 and polyphony(notes[:0]) == 0
    assert split_voices(notes[:0]).tolist() == []


def test_an_integer_beyond_any_float_is_an_input_error_naming_the_note():
    records = [{"pitch": 60, "start": 0, "end": 1}, {"pitch": 62, "start": 1, "end": 10**400}]
    with pytest.raises(InputError, match=r"^bwv.json: note 1 field 'end' must be a finite number, got an integer"):
        notes_from_records(records, source="bwv.json")
