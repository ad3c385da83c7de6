"""Shared test material: real public-domain scores from the music21 corpus.

The chorale excerpts and voices are parsed once, by tools/make_test_fixtures.py, and loaded from
tests/data/chorales.npz (see tests/chorales.py); the tests that read scores themselves parse them as they go.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from rollmatch import Library, read_notes, transform_notes
from rollmatch.manifest import ExemplarSpec
from rollmatch.notes import perturb_notes

from . import chorales
from .chorales import VOICES, chorale_path

__all__ = ["REPO", "VOICES", "chorale_path", "chorale_voices", "note_list", "write_midi"]

REPO = Path(__file__).resolve().parent.parent


def chorale_voices(name: str, beats: float = 8.0) -> dict[str, np.ndarray]:
    """The four voices, each read alone, of a Bach chorale's first ``beats`` beats, from the cache; the arrays
    are read-only and shared. A chorale not cached yet goes in ``chorales.VOICE_SETS`` (then rebuild the cache)."""
    cached = chorales.load().voices
    if (name, float(beats)) not in cached:
        raise AssertionError(
            f"chorale_voices({name!r}, {beats:g}) is not cached: add it to VOICE_SETS in tests/chorales.py and run "
            f"{chorales.REBUILD}"
        )
    return cached[name, float(beats)]


def write_midi(
    path: Path, notes: np.ndarray, *, tempo: float = 120.0, resolution: int = 480, drums: np.ndarray | None = None
) -> Path:
    """Write notes (beats) as a MIDI file through pretty_midi, optionally with a drum track."""
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    seconds = 60.0 / tempo
    for source, is_drum in ((notes, False), (drums, True)):
        if source is None:
            continue
        track = pretty_midi.Instrument(program=0, is_drum=is_drum, name="Drums" if is_drum else "Piano")
        for n in source:
            track.notes.append(
                pretty_midi.Note(int(n["velocity"]), int(n["pitch"]), n["start"] * seconds, n["end"] * seconds)
            )
        midi.instruments.append(track)
    midi.write(str(path))
    return path


def note_list(path: Path, notes: np.ndarray) -> Path:
    """Write notes (beats) as a JSON note list, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"pitch": int(n["pitch"]), "start": float(n["start"]), "end": float(n["end"])} for n in notes]
    path.write_text(json.dumps(records))
    return path


@pytest.fixture(scope="session")
def chorale_excerpts() -> list[np.ndarray]:
    """110 eight-beat, four-voice excerpts (beats 0-8 and 8-16) of 55 distinct Bach chorales, in corpus order
    (``chorales.parse_excerpts`` tells how they are chosen), loaded from the cache; the arrays are read-only."""
    return list(chorales.load().excerpts)


@pytest.fixture(scope="session")
def default_library() -> Library:
    return Library.open(REPO / "exemplars")


# A labeled set and a library with a mis-set threshold, for calibration (tests/test_calibrate.py, test_cli.py).
GOOD_EXEMPLARS = (0, 2, 4, 6, 8, 10)  # chorale_excerpts indices: openings of six chorales
UNRELATED = (41, 43, 45, 47, 49, 51, 53, 55)  # openings of eight other chorales
BAD_EXEMPLARS = ("parallel-fifths", "parallel-octaves")


@pytest.fixture(scope="session")
def labeled_dir(tmp_path_factory, chorale_excerpts):
    """good/: two noisy, transposed MIDI copies of each good exemplar; bad/: noisy copies of the bad exemplars;
    other/: unrelated chorale openings."""
    root = tmp_path_factory.mktemp("labeled")
    for label in ("good", "bad", "other"):
        (root / label).mkdir()
    rng = np.random.default_rng(7)
    for i in GOOD_EXEMPLARS:
        for copy, transpose in enumerate((-2, 3)):
            noisy = transform_notes(perturb_notes(chorale_excerpts[i], rng), transpose=transpose)
            write_midi(root / "good" / f"phrase{i}-{copy}.mid", noisy)
    for i in UNRELATED:
        write_midi(root / "other" / f"other{i}.mid", chorale_excerpts[i])
    for name in BAD_EXEMPLARS:
        notes = read_notes(REPO / "exemplars" / "bad" / f"{name}.json")
        for copy in range(2):
            note_list(
                root / "bad" / f"{name}-{copy}.json", transform_notes(perturb_notes(notes, rng), transpose=copy + 1)
            )
    return root


@pytest.fixture
def mis_set_library(tmp_path, chorale_excerpts) -> Library:
    """Six Bach phrases as good exemplars, two voice-leading faults as bad ones, and a good threshold of 0.99
    that nothing but an exact copy reaches."""
    library = Library.init(tmp_path / "lib")
    for i in GOOD_EXEMPLARS:
        library = library.add(
            note_list(tmp_path / "src" / f"phrase{i}.json", chorale_excerpts[i]), ExemplarSpec(label="good")
        )
    for name in BAD_EXEMPLARS:
        library = library.add(REPO / "exemplars" / "bad" / f"{name}.json", ExemplarSpec(label="bad"))
    return library.set_thresholds(good=0.99)
