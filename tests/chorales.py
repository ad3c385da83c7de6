"""The tests' Bach chorale material: parsed from the music21 corpus by rollmatch's own reader, cached in
``tests/data/chorales.npz``.

Parsing the 57 corpus files the excerpts come from takes 15-20 s; loading the cache takes milliseconds. The cache
holds exactly what the tests use: note arrays of the chorale excerpts (the ``chorale_excerpts`` fixture) and of the
chorale voices that ``conftest.chorale_voices`` hands out, with the corpus file each came from.

Rebuild it with ``python tools/make_test_fixtures.py`` after anything that changes what a chorale reads as: a
change to the score reader (``rollmatch/readers.py``, ``rollmatch/notes.py``), a new music21 release, or a change
to the selection below (another chorale voice set, another excerpt rule). ``tests/test_chorales.py`` re-parses
a few cached chorales with the current reader and fails when the cache has gone stale.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollmatch import read_notes, select_beats
from rollmatch.errors import InputError
from rollmatch.notes import NOTE_DTYPE

CACHE = Path(__file__).resolve().parent / "data" / "chorales.npz"
REBUILD = "python tools/make_test_fixtures.py"

VOICES = ["Soprano", "Alto", "Tenor", "Bass"]
EXCERPT_BEATS = 8.0
EXCERPT_COUNT = 110  # two per chorale
#: (chorale, beats) of every ``conftest.chorale_voices`` call the tests make.
VOICE_SETS = (
    ("bwv269", 8.0),
    ("bwv269", 16.0),
    ("bwv66.6", 8.0),
    ("bwv26.6", 8.0),
    ("bwv70.11", 8.0),
    ("bwv8.6", 8.0),
    ("bwv40.8", 8.0),
    ("bwv1.6", 8.0),
    ("bwv165.6", 8.0),
)


def chorale_path(name: str) -> Path:
    """A Bach chorale in the music21 corpus, e.g. 'bwv269'."""
    from music21 import corpus  # noqa: PLC0415  (slow import, only where a score is parsed)

    return Path(str(corpus.getWork(f"bach/{name}")))


def corpus_chorales() -> list[Path]:
    """Every compressed MusicXML file of Bach's in the music21 corpus, in the order the excerpts are taken."""
    from music21 import corpus  # noqa: PLC0415  (only a rebuild of the cache needs the corpus)

    return sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")


def excerpts_of(path: Path) -> tuple[np.ndarray, np.ndarray] | str:
    """A chorale's two excerpts (beats 0-8 and 8-16 of all four voices), or why it gives none."""
    try:
        notes = read_notes(path, tracks=VOICES)
    except InputError:  # not a four-voice chorale
        return "not four voices named " + " ".join(VOICES)
    if notes["end"].max() < 3 * EXCERPT_BEATS:
        return f"shorter than {3 * EXCERPT_BEATS:g} beats"
    return select_beats(notes, 0, EXCERPT_BEATS), select_beats(notes, EXCERPT_BEATS, 2 * EXCERPT_BEATS)


def opening_key(opening: np.ndarray) -> bytes:
    """The opening excerpt up to transposition: equal for the same harmonization in another file or key."""
    return np.stack([opening["pitch"] - opening["pitch"].min(), opening["start"], opening["end"]]).tobytes()


def parse_excerpts() -> tuple[list[np.ndarray], list[str], dict[str, str]]:
    """110 eight-beat, four-voice excerpts (beats 0-8 and 8-16) of 55 distinct Bach chorales, in corpus order;
    the file name each pair came from; and each file passed over on the way, with why.

    The corpus holds some harmonizations twice (a cantata's score and its vocal parts, or the same setting in
    another key); a chorale whose opening repeats, up to transposition, one already taken is skipped.
    """
    excerpts: list[np.ndarray] = []
    sources: list[str] = []
    skipped: dict[str, str] = {}
    seen: dict[bytes, str] = {}
    for path in corpus_chorales():
        found = excerpts_of(path)
        if isinstance(found, str):
            skipped[path.name] = found
            continue
        key = opening_key(found[0])
        if key in seen:
            skipped[path.name] = f"opens like {seen[key]}"
            continue
        seen[key] = path.name
        excerpts += found
        sources += [path.name, path.name]
        if len(excerpts) >= EXCERPT_COUNT:
            return excerpts, sources, skipped
    raise AssertionError("the music21 corpus holds too few four-voice chorales")


def parse_voices(name: str, beats: float) -> dict[str, np.ndarray]:
    """The four voices, each read alone, of a Bach chorale's first ``beats`` beats."""
    return {v: read_notes(chorale_path(name), tracks=[v], end_beat=beats) for v in VOICES}


@dataclass(frozen=True)
class Chorales:
    """The cached material; every array is read-only, shared by every test that asks for it."""

    excerpts: list[np.ndarray]
    sources: list[str]  #: the corpus file name of each excerpt
    skipped: dict[str, str]  #: corpus files passed over before the last excerpt's, with why
    voices: dict[tuple[str, float], dict[str, np.ndarray]]
    music21_version: str


def parse() -> Chorales:
    """Everything the cache holds, parsed now from the corpus (slow)."""
    import music21  # noqa: PLC0415  (as above)

    excerpts, sources, skipped = parse_excerpts()
    voices = {(name, beats): parse_voices(name, beats) for name, beats in VOICE_SETS}
    return Chorales(excerpts, sources, skipped, voices, music21.__version__)


def _voice_key(name: str, beats: float, voice: str) -> str:
    return f"voice|{name}|{beats:g}|{voice}"


def save(chorales: Chorales, path: Path = CACHE) -> None:
    """Write the cache: one note array per entry, no pickles."""
    arrays: dict[str, np.ndarray] = {f"excerpt|{i:03d}": e for i, e in enumerate(chorales.excerpts)}
    for (name, beats), voices in chorales.voices.items():
        arrays |= {_voice_key(name, beats, v): notes for v, notes in voices.items()}
    arrays["sources"] = np.array(chorales.sources)
    arrays["skipped"] = np.array([[name, why] for name, why in chorales.skipped.items()]).reshape(-1, 2)
    arrays["music21_version"] = np.array(chorales.music21_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.savez_compressed's format, with fixed timestamps: the same notes make the same bytes
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in sorted(arrays.items()):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _frozen(notes: np.ndarray) -> np.ndarray:
    if notes.dtype != NOTE_DTYPE:
        raise AssertionError(f"{CACHE}: notes of dtype {notes.dtype}, not {NOTE_DTYPE}: rebuild it with {REBUILD}")
    notes.setflags(write=False)
    return notes


def _voice_entries(keys: list[str]) -> Iterator[tuple[str, float, str, str]]:
    for key in keys:
        if key.startswith("voice|"):
            _, name, beats, voice = key.split("|")
            yield name, float(beats), voice, key


@functools.cache
def load(path: Path = CACHE) -> Chorales:
    """The cache, read once per session."""
    if not path.exists():
        raise AssertionError(f"{path} is missing: build it with {REBUILD}")
    with np.load(path, allow_pickle=False) as data:
        keys = sorted(data.files)
        excerpts = [_frozen(data[k]) for k in keys if k.startswith("excerpt|")]
        voices: dict[tuple[str, float], dict[str, np.ndarray]] = {}
        for name, beats, voice, key in _voice_entries(keys):
            voices.setdefault((name, beats), {})[voice] = _frozen(data[key])
        sources = [str(s) for s in data["sources"]]
        skipped = {str(name): str(why) for name, why in data["skipped"]}
        version = str(data["music21_version"])
    for parts in voices.values():  # in score order, as parse_voices gives them
        ordered = {v: parts[v] for v in VOICES}
        parts.clear()
        parts.update(ordered)
    return Chorales(excerpts, sources, skipped, voices, version)
