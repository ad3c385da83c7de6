"""Writing MIDI and MusicXML: what is written reads back as the same notes, in the meter (and key) asked for."""

from fractions import Fraction

import mido
import numpy as np
import pytest
from music21 import clef, converter, key, meter, stream, tempo

from rollmatch import make_notes, read_notes, transform_notes
from rollmatch.errors import OutputError, ParameterError
from rollmatch.notes import snap_notes
from rollmatch.writers import write_midi, write_musicxml

from .conftest import VOICES, chorale_voices


def test_notes_on_the_tick_grid_read_back_exactly(tmp_path):
    notes = snap_notes(
        make_notes(
            [60, 60, 64, 64, 67, 72],
            [0, 1, 1, 1, 1 / 3, 2 + 1 / 480],  # a repeated note, a unison, a triplet, a one-tick note
            [1, 2, 3, 2, 2 / 3, 2 + 2 / 480],
            [90, 80, 70, 70, 100, 127],
        )
    )
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


# --- MusicXML ---------------------------------------------------------------------------------------------


def _chorale(*, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The first eight beats of Bach's BWV 269 (G major, 3/4, a one-beat pickup), all four voices, sorted by
    (start, pitch), and each note's voice (0 = soprano)."""
    parts = [transform_notes(chorale_voices("bwv269")[v], shift_beats=shift) for v in VOICES]
    notes = np.concatenate(parts)
    voices = np.repeat(np.arange(len(parts)), [p.size for p in parts])
    order = np.lexsort((notes["pitch"], notes["start"]))
    return notes[order], voices[order]


def _joined(part: stream.Stream) -> set[tuple[int, Fraction, Fraction]]:
    """(pitch, start, end) of each note of a part read back, ties joined, chords split."""
    return {
        (
            int(p.midi),
            Fraction(n.offset).limit_denominator(960),
            Fraction(n.offset + n.quarterLength).limit_denominator(960),
        )
        for n in part.stripTies().flatten().notes
        for p in n.pitches
    }


def _expected(notes: np.ndarray) -> set[tuple[int, Fraction, Fraction]]:
    return {
        (int(n["pitch"]), Fraction(n["start"]).limit_denominator(960), Fraction(n["end"]).limit_denominator(960))
        for n in notes
    }


def test_a_chorale_writes_one_part_per_voice_in_its_key_meter_and_tempo(tmp_path):
    # The pickup shifted to beat 3 of bar 1, so that the bars are Bach's and a rest fills the first two beats.
    notes, voices = _chorale(shift=2.0)
    path = write_musicxml(tmp_path / "bwv269.musicxml", notes, voices=voices, beats_per_bar=3, tempo_bpm=72)
    assert path == tmp_path / "bwv269.musicxml"
    score = converter.parse(path)
    parts = list(score.parts)
    assert [p.partName for p in parts] == VOICES
    for index, part in enumerate(parts):
        assert _joined(part) == _expected(notes[voices == index]), VOICES[index]
        assert not list(part.recurse().getElementsByClass(stream.Voice))  # one line per part
        assert [m.number for m in part.getElementsByClass(stream.Measure)] == [1, 2, 3, 4]  # 10 beats
        assert [ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)] == ["3/4"]
        keys = list(part.recurse().getElementsByClass(key.Key))
        assert [(k.tonic.name, k.mode) for k in keys] == [("G", "major")]  # inferred: the chorale's key
        first = part.getElementsByClass(stream.Measure)[0].notesAndRests[0]
        assert first.isRest and first.quarterLength == 2
    clefs = [p.recurse().getElementsByClass(clef.Clef)[0] for p in parts]
    assert (clefs[0].sign, clefs[-1].sign) == ("G", "F")  # treble for the soprano, bass for the bass
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    assert [(m.number, m.referent.quarterLength) for m in marks] == [(72, 1.0)]
    assert marks[0].getContextByClass(stream.Part) is parts[0]


def test_notes_crossing_a_bar_line_are_tied_and_read_back_whole(tmp_path):
    notes, voices = _chorale()  # a 3/4 chorale with a pickup, barred in 2/4: half notes cross bar lines
    path = write_musicxml(tmp_path / "out.musicxml", notes, voices=voices, beats_per_bar=2, key="G major")
    score = converter.parse(path)
    assert any(n.tie is not None for n in score.recurse().notes)
    for index, part in enumerate(score.parts):
        assert _joined(part) == _expected(notes[voices == index])
        assert [m.number for m in part.getElementsByClass(stream.Measure)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("given", "tonic", "mode", "sharps"),
    [
        ("e minor", "E", "minor", 1),
        ("F# minor", "F#", "minor", 3),
        ("B- major", "B-", "major", -2),
        (key.Key("D"), "D", "major", 2),
    ],
)
def test_a_given_key_is_the_key_signature(tmp_path, given, tonic, mode, sharps):
    notes, voices = _chorale()
    score = converter.parse(write_musicxml(tmp_path / "out.musicxml", notes, voices=voices, key=given))
    for part in score.parts:
        keys = list(part.recurse().getElementsByClass(key.KeySignature))
        assert [(k.tonic.name, k.mode, k.sharps) for k in keys] == [(tonic, mode, sharps)]


@pytest.mark.parametrize("bad", ["H major", "G mixed", "", "C major minor"])
def test_a_bad_key_is_a_parameter_error_naming_it(tmp_path, bad):
    notes, voices = _chorale()
    with pytest.raises(ParameterError, match=rf"key={bad!r} is not a key; give e.g. 'G major' or 'e minor'"):
        write_musicxml(tmp_path / "out.musicxml", notes, voices=voices, key=bad)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"voices": [0, 1, 2]}, "voices has 3 entries for 4 notes"),
        ({"voices": [0, 1, -1, 2]}, r"voices\[2\]=-1 must be a whole number >= 0"),
        ({"voices": [0, 1, 2, 3], "part_names": ["S", "A"]}, "part_names has 2 names for 4 parts"),
        ({"beats_per_bar": 0}, "beats_per_bar=0 must be a whole number"),
        ({"tempo_bpm": 0}, "tempo_bpm=0 must be > 0"),
        ({"key": 5}, "key=5 must be a music21 Key"),
    ],
)
def test_bad_options_are_parameter_errors_naming_the_value(tmp_path, options, message):
    notes = chorale_voices("bwv269")["Soprano"][:4]
    with pytest.raises(ParameterError, match=message):
        write_musicxml(tmp_path / "out.musicxml", notes, **options)


def test_a_triplet_grid_reads_back_exactly(tmp_path):
    # The soprano in eighth-note triplets from beat 1/12 on, over the bass in sixteenths: every time on a 1/12 grid.
    voices_notes = chorale_voices("bwv269")
    soprano = snap_notes(transform_notes(voices_notes["Soprano"], stretch=1 / 3, shift_beats=1 / 12))
    bass = snap_notes(transform_notes(voices_notes["Bass"], stretch=1 / 4))
    notes = np.concatenate([soprano, bass])
    voices = np.repeat([0, 1], [soprano.size, bass.size])
    assert {Fraction(t).limit_denominator(960).denominator for t in np.concatenate([notes["start"], notes["end"]])} >= {
        12
    }
    score = converter.parse(write_musicxml(tmp_path / "out.musicxml", notes, voices=voices, key="G major"))
    assert [p.partName for p in score.parts] == ["Voice 1", "Voice 2"]
    assert _joined(score.parts[0]) == _expected(soprano)
    assert _joined(score.parts[1]) == _expected(bass)


def test_durations_music21_cannot_notate_are_quantized_not_refused(tmp_path):
    # One tick (1/480 beat) late and early: no note value says 1/480, so the times snap to sixteenths/triplets.
    soprano = chorale_voices("bwv269")["Soprano"]
    ragged = snap_notes(transform_notes(soprano, shift_beats=1 / 480))
    ragged["end"] -= 2 / 480
    score = converter.parse(write_musicxml(tmp_path / "out.musicxml", ragged, key="G major"))
    assert _joined(score.parts[0]) == _expected(soprano)


def test_without_voices_a_score_is_one_chordal_part(tmp_path):
    notes, _ = _chorale()
    score = converter.parse(write_musicxml(tmp_path / "out.musicxml", notes, key="G major", title="BWV 269"))
    assert [p.partName for p in score.parts] == ["Voice 1"]
    assert score.metadata.bestTitle == "BWV 269"
    assert not list(score.recurse().getElementsByClass(stream.Voice))
    # Notes starting together are one chord, lasting to its longest note but cut at the next onset: a soprano
    # half note stops when the alto moves.
    onsets = np.unique(notes["start"]).tolist()
    sizes = [len(n.pitches) for n in score.parts[0].stripTies().flatten().notes]
    assert sizes == [np.unique(notes["pitch"][notes["start"] == s]).size for s in onsets]
    assert sizes.count(4) >= 4
    following = dict(zip(onsets, [*onsets[1:], np.inf], strict=True))
    chord_end = {s: min(notes["end"][notes["start"] == s].max(), following[s]) for s in onsets}
    expected = {(int(n["pitch"]), Fraction(n["start"]), Fraction(chord_end[n["start"]])) for n in notes}
    assert expected != _expected(notes)
    assert _joined(score.parts[0]) == expected


def test_part_names_and_an_unwritable_place(tmp_path):
    notes, voices = _chorale()
    names = ["Cantus", "Altus", "Tenor", "Bassus"]
    score = converter.parse(write_musicxml(tmp_path / "out.xml", notes, voices=voices, key="G major", part_names=names))
    assert [p.partName for p in score.parts] == names
    with pytest.raises(OutputError, match="cannot write"):
        write_musicxml(tmp_path / "missing" / "out.musicxml", notes, voices=voices, key="G major")
