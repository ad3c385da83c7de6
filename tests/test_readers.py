import io
import json
import struct
import tracemalloc

import mido
import numpy as np
import pytest
from music21 import corpus, stream, tie
from music21 import note as m21note

from rollmatch import InputError, LimitError, defaults, make_notes, read_notes, read_notes_bytes
from rollmatch.bars import bar_span, bars_from_time_signatures
from rollmatch.readers import FORMATS, SUFFIXES, music_files, read_piece, read_piece_bytes, suffix_for, suffixes_of

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
    assert notes[["pitch", "start", "end", "velocity"]].tolist() == [
        (60, 0.0, 2.0, 90),
        (64, 0.0, 0.0, 70),
        (60, 1.0, 3.0, 50),
    ]


def test_a_note_never_turned_off_ends_with_its_track():
    data = _midi_bytes(
        [mido.Message("note_on", note=60, velocity=80, time=0), mido.MetaMessage("end_of_track", time=960)]
    )
    assert read_notes_bytes(data, "midi")["end"].tolist() == [2.0]


def test_midi_tracks_by_index_and_name():
    melody = [
        mido.MetaMessage("track_name", name="Melody"),
        mido.Message("note_on", note=72, velocity=80, time=0),
        mido.Message("note_off", note=72, time=480),
    ]
    bass = [
        mido.MetaMessage("track_name", name="Bass"),
        mido.Message("note_on", note=36, velocity=80, time=0),
        mido.Message("note_off", note=36, time=480),
    ]
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
    path.write_text(
        json.dumps([{"pitch": 64, "start": 1, "end": 2}, {"pitch": 60, "start": 0, "end": 1, "velocity": 100}])
    )
    notes = read_notes(path)
    assert notes[["pitch", "start", "velocity"]].tolist() == [(60, 0.0, 100), (64, 1.0, 90)]


# --- bad input ----------------------------------------------------------------------------------------------


def test_corrupt_midi_is_an_input_error(tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x90\x3c")
    with pytest.raises(InputError, match=r"broken\.mid: not a readable MIDI file"):
        read_notes(path)
    path.write_bytes(np.random.default_rng(1).bytes(300))
    with pytest.raises(InputError, match=r"broken\.mid: not a readable MIDI file"):
        read_notes(path)


def test_midi_without_notes_is_an_input_error(tmp_path):
    path = tmp_path / "silent.mid"
    path.write_bytes(_midi_bytes([mido.MetaMessage("set_tempo", tempo=500_000)]))
    with pytest.raises(InputError, match=r"silent\.mid: no notes"):
        read_notes(path)
    drums_only = write_midi(tmp_path / "drums.mid", make_notes([], [], []), drums=make_notes([36], [0], [1]))
    with pytest.raises(InputError, match=r"drums\.mid: no notes \(drum tracks are left out\)"):
        read_notes(drums_only)


def test_empty_missing_and_unknown_files(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mid: file is empty"):
        read_notes(tmp_path / "empty.mid")
    with pytest.raises(InputError, match="no such file"):
        read_notes(tmp_path / "absent.mid")
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match=r"song.wav: unknown file type '.wav'; supported: .abc .json .krn"):
        read_notes(tmp_path / "song.wav")
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part id='P1'><measure")
    with pytest.raises(InputError, match=r"bad\.musicxml: not a readable musicxml file"):
        read_notes(tmp_path / "bad.musicxml")
    (tmp_path / "bad.json").write_text("[{]")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        read_notes(tmp_path / "bad.json")
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError, match=r"deep\.json: not valid JSON: nested too deeply"):
        read_notes(tmp_path / "deep.json")
    (tmp_path / "latin1.json").write_bytes(b"[\xff]")
    with pytest.raises(InputError, match=r"latin1\.json: not valid JSON"):
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
    data = _midi_bytes(
        [
            m
            for i in range(11)
            for m in (
                mido.Message("note_on", note=60 + i, velocity=80, time=0),
                mido.Message("note_off", note=60 + i, time=10),
            )
        ]
    )
    with pytest.raises(LimitError, match="more than 10 notes"):
        read_notes_bytes(data, "midi")


# --- bars ---------------------------------------------------------------------------------------------------


def _midi_with_meters(notes: np.ndarray, meters: list[tuple[float, int, int]], *, ticks_per_beat: int = 480) -> bytes:
    """A type-1 MIDI file: a conductor track holding only the time signatures, then the notes in track 1."""
    conductor = [
        (round(beat * ticks_per_beat), mido.MetaMessage("time_signature", numerator=n, denominator=d))
        for beat, n, d in meters
    ]
    events = [
        (
            round(n["start"] * ticks_per_beat),
            1,
            mido.Message("note_on", note=int(n["pitch"]), velocity=int(n["velocity"])),
        )
        for n in notes
    ]
    events += [(round(n["end"] * ticks_per_beat), 0, mido.Message("note_off", note=int(n["pitch"]))) for n in notes]
    events.sort(key=lambda event: event[:2])  # offs before ons on one tick

    def timed(absolute: list[tuple[int, mido.Message | mido.MetaMessage]]) -> list[mido.Message | mido.MetaMessage]:
        ticks = [tick for tick, _ in absolute]
        return [
            message.copy(time=tick - before) for (tick, message), before in zip(absolute, [0, *ticks], strict=False)
        ]

    named = [mido.MetaMessage("track_name", name="Soprano"), *timed([(tick, message) for tick, _, message in events])]
    return _midi_bytes(timed(conductor), named, ticks_per_beat=ticks_per_beat)


def test_musicxml_bars_follow_its_time_signature_changes():
    # BWV 27.6: fourteen bars of 4/4, then eight of 3/2 (6 beats) from beat 56; no pickup.
    piece = read_piece(chorale_path("bwv27.6"))
    expected = [4.0 * b for b in range(15)] + [56.0 + 6 * b for b in range(1, 9)]
    assert piece.bars.first == 1 and piece.bars.bounds.tolist() == expected
    assert piece.bars.bounds.tolist() == bars_from_time_signatures([(0, 4, 4), (56, 3, 2)], 104).bounds.tolist()
    assert bar_span(piece.bars, (14, 15)) == (52, 62) and bar_span(piece.bars, (22, 22)) == (98, 104)
    with pytest.raises(InputError, match=r"bwv27\.6\.mxl: bars=20-23: the piece has 22 bars"):
        bar_span(piece.bars, (20, 23), name="bwv27.6.mxl")
    # BWV 304: eight bars of 4/4, a one-beat bar 9 leading into 3/4, which runs from beat 33 to 81.
    bwv304 = read_piece(chorale_path("bwv304")).bars
    assert bwv304.last == 25 and bar_span(bwv304, (8, 10)) == (28, 36) and bar_span(bwv304, (9, 9)) == (32, 33)
    assert bar_span(bwv304, (10, 25)) == (33, 81)


def test_musicxml_pickup_is_bar_0():
    # BWV 269 in 3/4 opens with a one-beat pickup; bar 1 starts at beat 1, and the last bar (21) is 2 beats.
    bars = read_piece(chorale_path("bwv269")).bars
    assert bars.first == 0 and bars.last == 21
    assert (
        bar_span(bars, (0, 0)) == (0, 1) and bar_span(bars, (1, 2)) == (1, 7) and bar_span(bars, (21, 21)) == (61, 63)
    )


def test_kern_and_abc_bars():
    # BWV 277 in kern: a pickup, and bar 4 is split by a repeat sign into measures of 3 and 1 beats.
    kern = read_piece(corpus.getWork("bach/bwv277.krn")).bars
    assert kern.first == 0 and kern.last == 12
    assert (
        bar_span(kern, (4, 4)) == (13, 17)
        and bar_span(kern, (5, 5)) == (17, 21)
        and bar_span(kern, (12, 12)) == (45, 49)
    )
    # A 6/8 jig with an eighth-note pickup; its second strain has its own pickup, which music21 makes bar 9.
    jig = read_piece(corpus.getWork("ryansMammoth/ComeUnderMyPladdieJig.abc")).bars
    assert jig.first == 0 and jig.last == 17
    assert (
        bar_span(jig, (0, 1)) == (0, 3.5)
        and bar_span(jig, (8, 9)) == (21.5, 24.5)
        and bar_span(jig, (17, 17)) == (45.5, 48)
    )
    # A jig starting on a full bar: bar 1 at beat 0, though music21 numbers that measure 0.
    assert bar_span(read_piece(corpus.getWork("ryansMammoth/RubTheBagJig.abc")).bars, (1, 2)) == (0, 6)


def test_midi_bars_come_from_its_time_signature_events():
    soprano = read_notes(chorale_path("bwv269"), tracks=["Soprano"])  # beats 0-63
    data = _midi_with_meters(soprano, [(0, 3, 4), (6, 2, 4), (10, 6, 8)])
    piece = read_piece_bytes(data, "midi", name="meters.mid")
    # 3/4 for bars 1-2, 2/4 for bars 3-4, then 6/8 (3 beats) until the first bar line at or after beat 63.
    assert piece.bars.bounds.tolist() == [0, 3, 6, 8, 10, *(10 + 3 * k for k in range(1, 19))]
    assert (
        piece.bars.last == 22 and bar_span(piece.bars, (3, 4)) == (6, 10) and bar_span(piece.bars, (22, 22)) == (61, 64)
    )
    with pytest.raises(InputError, match=r"meters\.mid: bars=23: the piece has 22 bars"):
        bar_span(piece.bars, (23, 23), name="meters.mid")
    # The time signatures sit in the conductor track, so choosing the notes' track keeps the bars.
    only_track = read_piece_bytes(data, "midi", tracks=["Soprano"]).bars
    assert only_track.bounds.tolist() == piece.bars.bounds.tolist()
    np.testing.assert_allclose(
        piece.select(6, 10)["start"],
        read_notes(chorale_path("bwv269"), tracks=["Soprano"], start_beat=6, end_beat=10)["start"],
    )


def test_a_json_note_list_has_no_bars(tmp_path):
    path = tmp_path / "frag.json"
    path.write_text(json.dumps([{"pitch": 60, "start": 0, "end": 1}]))
    with pytest.raises(InputError, match=r"frag\.json: a JSON note list has no bars"):
        _ = read_piece(path).bars


def test_music_files_expands_folders_sorted(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.mid", "A.MID", "c.musicxml", "notes.txt", ".hidden.mid", "sub/d.mid", "e.json"):
        (folder / name).write_bytes(b"x")
    lone = tmp_path / "lone.abc"
    assert music_files([lone, folder]) == [
        lone,
        folder / "A.MID",
        folder / "b.mid",
        folder / "c.musicxml",
        folder / "e.json",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: holds no music files \(.abc .json .krn"):
        music_files([tmp_path / "empty"])


def test_one_map_of_formats_and_suffixes():
    assert set(SUFFIXES) == set(FORMATS.values())
    assert all(FORMATS[suffix] == fmt for fmt, suffix in SUFFIXES.items())  # each written suffix reads back
    assert suffixes_of("midi") == (".mid", ".midi") and SUFFIXES["musicxml"] == ".musicxml"
    assert suffix_for("musicxml", b"PK\x03\x04") == ".mxl" and suffix_for("musicxml", b"<?xml") == ".musicxml"
