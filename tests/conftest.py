"""Shared test material: real public-domain scores from the music21 corpus, parsed once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from music21 import corpus

from rollmatch import Library, read_notes, select_beats

REPO = Path(__file__).resolve().parent.parent
VOICES = ["Soprano", "Alto", "Tenor", "Bass"]
EXCERPT_BEATS = 8.0


def chorale_path(name: str) -> Path:
    """A Bach chorale in the music21 corpus, e.g. 'bwv269'."""
    return Path(str(corpus.getWork(f"bach/{name}")))


def write_midi(path: Path, notes: np.ndarray, *, tempo: float = 120.0, resolution: int = 480, drums: np.ndarray | None = None) -> Path:
    """Write notes (beats) as a MIDI file through pretty_midi, optionally with a drum track."""
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    seconds = 60.0 / tempo
    for source, is_drum in ((notes, False), (drums, True)):
        if source is None:
            continue
        track = pretty_midi.Instrument(program=0, is_drum=is_drum, name="Drums" if is_drum else "Piano")
        for n in source:
            track.notes.append(pretty_midi.Note(int(n["velocity"]), int(n["pitch"]), n["start"] * seconds, n["end"] * seconds))
        midi.instruments.append(track)
    midi.write(str(path))
    return path


@pytest.fixture(scope="session")
def chorale_excerpts() -> list[np.ndarray]:
    """110 eight-beat, four-voice excerpts (beats 0-8 and 8-16) of 55 distinct Bach chorales, in corpus order.

    The corpus holds some harmonizations twice (a cantata's score and its vocal parts, or the same setting in
    another key); a chorale whose opening repeats, up to transposition, one already taken is skipped.
    """
    excerpts: list[np.ndarray] = []
    seen: set[bytes] = set()
    for path in sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl"):
        try:
            notes = read_notes(path, tracks=VOICES)
        except Exception:  # not a four-voice chorale
            continue
        if notes["end"].max() < 3 * EXCERPT_BEATS:
            continue
        opening = select_beats(notes, 0, EXCERPT_BEATS)
        key = np.stack([opening["pitch"] - opening["pitch"].min(), opening["start"], opening["end"]]).tobytes()
        if key in seen:
            continue
        seen.add(key)
        excerpts += [select_beats(notes, 0, EXCERPT_BEATS), select_beats(notes, EXCERPT_BEATS, 2 * EXCERPT_BEATS)]
        if len(excerpts) >= 110:
            return excerpts
    raise AssertionError("the music21 corpus holds too few four-voice chorales")


@pytest.fixture(scope="session")
def default_library() -> Library:
    return Library.open(REPO / "exemplars")
