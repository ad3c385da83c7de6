import mido
import numpy as np
import pytest

from rollmatch import InputError, ParameterError
from rollmatch.bars import Bars, bars_of, read_bars, regular_bars

from .conftest import chorale_path


def test_regular_bars_cover_the_piece():
    bars = regular_bars(3, 10)
    assert bars.starts.tolist() == [0, 3, 6, 9] and bars.numbers.tolist() == [1, 2, 3, 4]
    assert regular_bars(4, 0).starts.tolist() == [0]  # an empty piece still has its first bar


@pytest.mark.parametrize(("value", "message"), [(0, "beats_per_bar=0 must be"), (float("nan"), "beats_per_bar=nan must be")])
def test_regular_bars_refuse_a_bad_length(value, message):
    with pytest.raises(ParameterError, match=message):
        regular_bars(value, 8)


def test_window_keeps_the_running_bar_and_counts_from_the_window():
    bars = Bars(np.array([0.0, 1.0, 4.0, 7.0, 10.0]), first_number=0)  # a one-beat pickup, then 3/4
    window = bars.window(5.0, 11.0)
    assert window.starts.tolist() == [-1.0, 2.0, 5.0] and window.numbers.tolist() == [2, 3, 4]
    assert window.count(6.0) == 3
    assert window.count(5.0) == 2  # bar 4 starts where the window ends
    assert bars.window(0.0, 4.0).starts.tolist() == [0.0, 1.0] and bars.window(0.0, 4.0).count(4.0) == 2


def test_a_chorale_gives_its_pickup_and_printed_bar_numbers():
    bars = read_bars(chorale_path("bwv269"))  # 3/4 with a one-beat pickup; phrases end on split bars (2 + 1 beats)
    assert bars is not None and bars.first_number == 0
    assert bars.starts[:8].tolist() == [0.0, 1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0]
    assert set(np.diff(bars.starts).tolist()) == {1.0, 2.0, 3.0}


def test_a_score_with_changing_metre(tmp_path):
    from music21 import meter, note, stream

    part = stream.Part()
    for number, (signature, beats) in enumerate([("3/4", 3), ("3/4", 3), ("2/4", 2), ("6/8", 3), ("4/4", 4)], start=1):
        measure = stream.Measure(number=number)
        measure.append(meter.TimeSignature(signature))
        measure.append(note.Note("C4", quarterLength=beats))
        part.append(measure)
    path = tmp_path / "metres.musicxml"
    stream.Score([part]).write("musicxml", fp=str(path))
    bars = read_bars(path)
    assert bars is not None and bars.starts.tolist() == [0, 3, 6, 8, 11] and bars.first_number == 1


def test_midi_time_signatures_start_new_bars(tmp_path):
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=6, denominator=8, time=6 * 480))  # after two 3/4 bars
    track.append(mido.Message("note_off", note=60, velocity=0, time=6 * 480))  # two 6/8 bars (3 beats each)
    midi.tracks.append(track)
    path = tmp_path / "metres.mid"
    midi.save(str(path))
    bars = read_bars(path)
    assert bars is not None and bars.starts.tolist() == [0, 3, 6, 9]


def test_midi_without_time_signature_is_four_four(tmp_path):
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                                       mido.Message("note_off", note=60, velocity=0, time=96 * 10)]))
    path = tmp_path / "plain.mid"
    midi.save(str(path))
    assert read_bars(path).starts.tolist() == [0, 4, 8]  # type: ignore[union-attr]


def test_note_lists_state_no_metre_so_drawings_fall_back(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text('[{"pitch": 60, "start": 0, "end": 7}]')
    assert read_bars(path) is None
    assert bars_of(path, 7.0).starts.tolist() == [0, 4]
    assert bars_of(chorale_path("bwv269"), 7.0, beats_per_bar=2).starts.tolist() == [0, 2, 4, 6]  # asked for wins


def test_unreadable_files_are_input_errors(tmp_path):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00")
    with pytest.raises(InputError, match="broken.mid: not a readable MIDI file"):
        read_bars(broken)
    with pytest.raises(InputError, match="cannot read"):
        read_bars(tmp_path / "missing.musicxml")
    garbage = tmp_path / "garbage.musicxml"
    garbage.write_text("<score-partwise><part id='P1'><measure")
    with pytest.raises(InputError, match="garbage.musicxml: not a readable musicxml file"):
        read_bars(garbage)
