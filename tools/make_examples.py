"""Write the example fragments in examples/ (run from the repository root).

- bwv18.5-lz-opening.mid: the opening phrase of chorale BWV 18.5 (Leipzig version), which the library holds
  in its Weimar version, a whole tone lower: GOOD.
- bwv269-opening.mid: the opening phrase of chorale BWV 269, which resembles no exemplar closely: UNMATCHED.
- planing.mid: the bad 'parallel-fifths' exemplar a fourth higher in quarter notes with one chord
  changed: VETOED.
- bwv18.5-lz-two-phrases.mid: the first two phrases of BWV 18.5 (Leipzig): the library's first phrase matches
  whole but covers only half of it: UNMATCHED.
- octaves-in-a-chorale.mid: the opening of chorale BWV 269 with its outer voices replaced, for four beats, by
  the 'parallel-octaves-pair' pattern, its alto and tenor sounding inside the pattern's box: VETOED by that
  pattern in contains mode, which a near copy of it would miss.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
from music21 import corpus

from rollmatch import notes_from_records, read_notes, transform_notes
from rollmatch.notes import sort_notes

OUT = Path(__file__).resolve().parent.parent / "examples"
TEMPO = 100.0


def write_midi(notes: np.ndarray, path: Path) -> None:
    """Notes in beats → a one-track piano MIDI file at TEMPO."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    seconds = 60.0 / TEMPO
    for n in notes:
        piano.notes.append(
            pretty_midi.Note(int(n["velocity"]), int(n["pitch"]), n["start"] * seconds, n["end"] * seconds)
        )
    midi.instruments.append(piano)
    midi.write(str(path))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    write_midi(read_notes(corpus.getWork("bach/bwv18.5-lz"), end_beat=8), OUT / "bwv18.5-lz-opening.mid")
    write_midi(read_notes(corpus.getWork("bach/bwv269"), end_beat=12), OUT / "bwv269-opening.mid")
    fifths = notes_from_records(json.loads((OUT.parent / "exemplars/bad/parallel-fifths.json").read_text()))
    planing = transform_notes(fifths, transpose=5, stretch=0.5)
    planing = planing[~((planing["start"] == 1.0) & (planing["pitch"] == 74))]  # one altered chord
    write_midi(planing, OUT / "planing.mid")
    write_midi(read_notes(corpus.getWork("bach/bwv18.5-lz"), end_beat=16), OUT / "bwv18.5-lz-two-phrases.mid")
    write_midi(octaves_in_a_chorale(), OUT / "octaves-in-a-chorale.mid")


def octaves_in_a_chorale() -> np.ndarray:
    """BWV 269's first full bars (after its pickup), with soprano and bass replaced over beats 1-5 by the
    parallel-octaves pattern at x1/2, moved to the bass's register (C3 -> G2)."""
    path = corpus.getWork("bach/bwv269")
    voices = {v: read_notes(path, tracks=[v], start_beat=1, end_beat=9) for v in ("Soprano", "Alto", "Tenor", "Bass")}
    pair = notes_from_records(json.loads((OUT.parent / "exemplars/bad/parallel-octaves-pair.json").read_text()))
    octaves = transform_notes(pair, transpose=-5, stretch=0.5, shift_beats=1.0)
    kept = [voices["Alto"], voices["Tenor"]]
    for v in ("Soprano", "Bass"):
        kept.append(voices[v][(voices[v]["end"] <= 1.0) | (voices[v]["start"] >= 5.0)])
    return sort_notes(np.concatenate([*kept, octaves]))


if __name__ == "__main__":
    main()
