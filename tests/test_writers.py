"""Writing MIDI: what is written reads back as the same notes, in the meter asked for."""

import mido
import numpy as np
import pytest

from rollmatch import make_notes, read_notes
from rollmatch.errors import OutputError
from rollmatch.notes import snap_notes
from rollmatch.writers import write_midi


def test_notes_on_the_tick_grid_read_back_exactly(tmp_path):
    notes = snap_notes(make_notes(
        [60, 60, 64, 64, 67, 72],
        [0, 1, 1, 1, 1 / 3, 2 + 1 / 480],  # a repeated note, a unison, a triplet, a one-tick note
        [1, 2, 3, 2, 2 / 3, 2 + 2 / 480],
        [90, 80, 70, 70, 100, 127],
    ))
    path = write_midi(tmp_path / "out.mid", notes, beats_per_bar=3, tempo_bpm=72)
    back = read_notes(path)
    assert back.tobytes() == notes.tobytes()
    signature = [m for m in mido.MidiFile(path).tracks[0] if m.type == "time_signature"]
    assert [(m.numerator, m.denominator) for m in signature] == [(3, 4)]


def test_an_unwritable_place_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write"):
        write_midi(tmp_path / "missing" / "out.mid", make_notes([60], [0], [1]))


def test_the_file_is_replaced_whole(tmp_path):
    path = tmp_path / "out.mid"
    write_midi(path, make_notes([60], [0], [1]))
    write_midi(path, make_notes([62, 64], [0, 1], [1, 2]))
    assert read_notes(path)["pitch"].tolist() == [62, 64]
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]
    assert np.all(read_notes(path)["end"] == [1, 2])
