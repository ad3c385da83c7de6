import io
import json
import struct
import tracemalloc

import mido
import numpy as np
import pytest
from music21 import corpus, stream, tie
from music21 import note as m21note

from rollmatch import InputError, LimitError, make_notes, read_notes, read_notes_bytes
from rollmatch import defaults

from .conftest import VOICES, chorale_path, write_midi


def _midi_bytes(*tracks: list[mido.Message | mido.MetaMessage], ticks_per_beat: int = 480) -> bytes:
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


# --- MIDI -------------------------------------------------------------------------------------------------


def test_midi_beats_come_from_ticks_whatever_the_tempo(tmp_path):
    notes = read_notes(chorale_path("bwv269"), end_beat=8)
    slow = read_notes(write_midi(tmp_path / "slow.mid", notes, tempo=40))
    fast = read_notes(write_midi(tmp_path / "fast.mid", notes, tempo=208))
    for field in ("pitch", "start", "end"):
        np.testing.assert_allclose(slow[field], notes[field], atol=1 / 480)
        np.testing.assert_allclose(fast[field], notes[field], atol=1 / 480)


def test_midi_tempo_changes_do_not_move_beats():
    data = _midi_bytes(
        [
            mido.MetaMessage("set_tempo", tempo=500_000, time=0),
            mido.Message("note_on", note=60, velocity=80, time=0),
            mido.Message("note_off", note=60, velocity=0, time=480),
            mido.MetaMessage("set_tempo", tempo=2_000_000, time=0),
            mido.Message("note_on", note=62, velocity=80, time=0),
            mido.Message("note_off", note=62, velocity=0, time=960),
        ]
    )
    notes = read_notes_bytes(data, "midi")
    assert notes["start"].tolist() == [0.0, 1.0] and notes["end"].tolist() == [1.0, 3.0]


def test_drum_tracks_are_left_out(tmp_path):
    melody = make_notes([60, 62], [0, 1], [1, 2])
    drums = make_notes([36, 38, 42], [0, 1, 1.5], [0.5, 1.5, 2])
    notes = read_notes(write_midi(tmp_path / "band.mid", melody, drums=drums))
    assert notes["pitch"].tolist() == [60, 62]


def test_sustain_pedal_is_ignored():
    data = _midi_bytes(
        [
            mido.Message("control_change", control=64, value=127, time=0),
            mido.Message("note_on", note=60, velocity=80, time=0),
            mido.Message("note_off", note=60, velocity=0, time=240),
            mido.Message("control_change", control=64, value=0, time=1680),
        ]
    )
    notes = read_notes_bytes(data, "midi")
    assert notes["end"].tolist() == [0.5]


def test_zero_length_notes_are_kept_and_overlaps_pair_first_in_first_out():
    data = _midi_bytes(
        [
            mido.Message("note_on", note=64, velocity=70, time=0),
            mido.Message("note_off", note=64, velocity=0, time=0),  # zero length: on and off on one tick
            mido.Message("note_on", note=60, velocity=90, time=0),
            mido.Message("note_on", note=60, velocity=50, time=480),  # re-struck while sounding
            mido.Message("note_off", note=60, velocity=0, time=480),
            mido.Message("note_off", note=60, velocity=0, time=480),
        ]
    )
    notes = read_notes_bytes(data, "midi")
    assert notes[["pitch", "start", "end", "velocity"]].tolist() == [(60, 0.0, 2.0, 90), (64, 0.0, 0.0, 70), (60, 1.0, 3.0, 50)]


def test_a_note_never_turned_off_ends_with_its_track():
    data = _midi_bytes([mido.Message("note_on", note=60, velocity=80, time=0), mido.MetaMessage("end_of_track", time=960)])
    assert read_notes_bytes(data, "midi")["end"].tolist() == [2.0]


def test_midi_tracks_by_index_and_name():
    melody = [mido.MetaMessage("track_name", name="Melody"), mido.Message("note_on", note=72, velocity=80, time=0),
              mido.Message("note_off", note=72, time=480)]
    bass = [mido.MetaMessage("track_name", name="Bass"), mido.Message("note_on", note=36, velocity=80, time=0),
            mido.Message("note_off", note=36, time=480)]
    data = _midi_bytes([mido.MetaMessage("set_tempo", tempo=500_000)], melody, bass)
    assert read_notes_bytes(data, "midi")["pitch"].tolist() == [36, 72]
    assert read_notes_bytes(data, "midi", tracks=["bass"])["pitch"].tolist() == [36]
    assert read_notes_bytes(data, "midi", tracks=[1])["pitch"].tolist() == [72]
    with pytest.raises(InputError, match=r"track 7 does not exist; it has tracks 0, 1 'Melody', 2 'Bass'"):
        read_notes_bytes(data, "midi", tracks=[7])


# --- score formats ----------------------------------------------------------------------------------------


def test_musicxml_chorale_reads_four_voices_with_beat_range():
    path = chorale_path("bwv269")
    whole = read_notes(path)
    bass = read_notes(path, tracks=["Bass"])
    assert set(bass["pitch"]) < set(whole["pitch"]) and bass["pitch"].max() < 64
    phrase = read_notes(path, start_beat=4, end_beat=8)
    assert phrase["start"].min() == 0 and phrase["end"].max() == 4
    assert len(read_notes(path, tracks=VOICES)) == len(whole)


def test_ties_are_joined(tmp_path):
    part = stream.Part()
    first, second = m21note.Note("C4", quarterLength=1.0), m21note.Note("C4", quarterLength=1.0)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    part.append([m21note.Note("E4", quarterLength=1.0), first, second])
    path = tmp_path / "tied.musicxml"
    stream.Score([part]).write("musicxml", fp=str(path))
    notes = read_notes(path)
    assert notes[["pitch", "start", "end"]].tolist() == [(64, 0.0, 1.0), (60, 1.0, 3.0)]


def test_humdrum_and_abc_read_real_scores():
    kern = read_notes(corpus.getWork("bach/bwv277.krn"))
    assert len(kern) > 200 and kern["pitch"].min() >= 36
    abc = read_notes(corpus.getWork("josquin/adieuMesAmours.abc"))
    assert len(abc) > 100 and abc["start"].min() == 0


def test_musicxml_bytes_read_like_the_file():
    path = chorale_path("bwv269")
    from_bytes = read_notes_bytes(path.read_bytes(), "musicxml", name="bwv269.mxl")
    assert from_bytes.tolist() == read_notes(path).tolist()


def test_json_note_list(tmp_path):
    path = tmp_path / "frag.json"
    path.write_text(json.dumps([{"pitch": 64, "start": 1, "end": 2}, {"pitch": 60, "start": 0, "end": 1, "velocity": 100}]))
    notes = read_notes(path)
    assert notes[["pitch", "start", "velocity"]].tolist() == [(60, 0.0, 100), (64, 1.0, 90)]


# --- bad input ----------------------------------------------------------------------------------------------


def test_corrupt_midi_is_an_input_error(tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x90\x3c")
    with pytest.raises(InputError, match="broken.mid: not a readable MIDI file"):
        read_notes(path)
    path.write_bytes(np.random.default_rng(1).bytes(300))
    with pytest.raises(InputError, match="broken.mid: not a readable MIDI file"):
        read_notes(path)


def test_midi_without_notes_is_an_input_error(tmp_path):
    path = tmp_path / "silent.mid"
    path.write_bytes(_midi_bytes([mido.MetaMessage("set_tempo", tempo=500_000)]))
    with pytest.raises(InputError, match="silent.mid: no notes"):
        read_notes(path)
    drums_only = write_midi(tmp_path / "drums.mid", make_notes([], [], []), drums=make_notes([36], [0], [1]))
    with pytest.raises(InputError, match="drums.mid: no notes .drum tracks are left out."):
        read_notes(drums_only)


def test_empty_missing_and_unknown_files(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(InputError, match="empty.mid: file is empty"):
        read_notes(tmp_path / "empty.mid")
    with pytest.raises(InputError, match="no such file"):
        read_notes(tmp_path / "absent.mid")
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match=r"song.wav: unknown file type '.wav'; supported: .abc .json .krn"):
        read_notes(tmp_path / "song.wav")
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part id='P1'><measure")
    with pytest.raises(InputError, match="bad.musicxml: not a readable musicxml file"):
        read_notes(tmp_path / "bad.musicxml")
    (tmp_path / "bad.json").write_text("[{]")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        read_notes(tmp_path / "bad.json")
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError, match="deep.json: not valid JSON: nested too deeply"):
        read_notes(tmp_path / "deep.json")
    (tmp_path / "latin1.json").write_bytes(b"[\xff]")
    with pytest.raises(InputError, match="latin1.json: not valid JSON"):
        read_notes(tmp_path / "latin1.json")


def test_a_44_byte_month_long_note_is_refused_without_allocating(tmp_path):
    # Slowest tempo, one tick per beat, and a note-off 268 million ticks later: a month-long note.
    track = (
        b"\x00\xff\x51\x03\xff\xff\xff"  # tempo: 16.7 s per beat
        b"\x00\x90\x3c\x40"  # note on
        b"\xff\xff\xff\x7f\x80\x3c\x40"  # note off after 0x0FFFFFFF ticks
        b"\x00\xff\x2f\x00"  # end of track
    )
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk" + struct.pack(">I", len(track)) + track
    assert len(data) == 44
    path = tmp_path / "bomb.mid"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=f"bomb.mid: track 0 runs past beat {defaults.MAX_BEATS:g}"):
            read_notes(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.mid"
    with open(path, "wb") as handle:
        handle.truncate(defaults.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(LimitError, match=f"huge.mid: {defaults.MAX_FILE_BYTES + 1} bytes exceeds the limit"):
        read_notes(path)


def test_too_many_notes_are_refused(monkeypatch):
    monkeypatch.setattr(defaults, "MAX_NOTES", 10)
    data = _midi_bytes([m for i in range(11) for m in (mido.Message("note_on", note=60 + i, velocity=80, time=0),
                                                       mido.Message("note_off", note=60 + i, time=10))])
    with pytest.raises(LimitError, match="more than 10 notes"):
        read_notes_bytes(data, "midi")
