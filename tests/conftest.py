"""Shared test material: real public-domain scores from the music21 corpus, parsed once per session."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from music21 import corpus

from rollmatch import Library, read_notes, select_beats, transform_notes
from rollmatch.manifest import ExemplarSpec
from rollmatch.notes import perturb_notes

REPO = Path(__file__).resolve().parent.parent
VOICES = ["Soprano", "Alto", "Tenor", "Bass"]
EXCERPT_BEATS = 8.0


def chorale_path(name: str) -> Path:
    """A Bach chorale in the music21 corpus, e.g. 'bwv269'."""
    return Path(str(corpus.getWork(f"bach/{name}")))


@functools.cache
def chorale_voices(name: str, beats: float = 8.0) -> dict[str, np.ndarray]:
    """The four voices, each alone, of a Bach chorale's first ``beats`` beats; parsed once per session (do not
    modify the arrays)."""
    return {v: read_notes(chorale_path(name), tracks=[v], end_beat=beats) for v in VOICES}


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
