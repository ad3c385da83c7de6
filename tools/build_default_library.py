"""Rebuild the default exemplar library in exemplars/ (run from the repository root).

Good exemplars: the first phrase (up to the first fermata) of four-part Bach chorales from the music21
corpus (public domain), every fourth eligible chorale in sorted order, so that the others stay unseen for
tests and calibration. Bad exemplars: short passages composed here to show what a chorale-style composer
vetoes, each described in the manifest. Whole textures and lone melodies are matched as near copies; the two
voice-leading patterns are matched in 'contains' mode, so that they veto the fault inside any texture, with
their own threshold (see exemplars/README.md for the measurement).

The thresholds are rollmatch's calibrated defaults: see exemplars/README.md and
tools/calibrate_default_library.py. ``--to DIR`` builds elsewhere, e.g. to compare with the shipped one.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from music21 import corpus, expressions

from rollmatch import ExemplarSpec, Label, Library, defaults
from rollmatch.manifest import MANIFEST_NAME

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "exemplars"
GOOD_COUNT = 24
STRIDE = 4
VOICES = ["Soprano", "Alto", "Tenor", "Bass"]


def eligible_chorales() -> list[tuple[Path, float]]:
    """(path, first phrase end in beats) of every four-voice chorale whose first phrase is 6-12 beats."""
    out = []
    for path in sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl"):
        score = corpus.parse(path)
        if [p.partName for p in score.parts] != VOICES:
            continue
        fermatas = [
            float(n.offset + n.quarterLength)
            for n in score.parts[0].flatten().notes
            if any(isinstance(e, expressions.Fermata) for e in n.expressions)
        ]
        if fermatas and 6 <= fermatas[0] <= 12:
            out.append((path, fermatas[0]))
    return out


def held_out_chorales() -> list[tuple[Path, float]]:
    """The eligible chorales the default library does not use."""
    chosen = eligible_chorales()
    return [c for i, c in enumerate(chosen) if i % STRIDE or i // STRIDE >= GOOD_COUNT]


def n(pitch: int, start: float, end: float) -> dict[str, float | int]:
    return {"pitch": pitch, "start": start, "end": end, "velocity": defaults.VELOCITY}


def chords(*voicings: list[int], beats: float = 2.0) -> list[dict[str, float | int]]:
    return [n(p, i * beats, (i + 1) * beats) for i, chord in enumerate(voicings) for p in chord]


def melody(pitches: list[int], beats: float = 1.0) -> list[dict[str, float | int]]:
    return [n(p, i * beats, (i + 1) * beats) for i, p in enumerate(pitches)]


@dataclass(frozen=True)
class Bad:
    """A composed bad exemplar: its notes, what it shows, and how it is matched."""

    notes: list[dict[str, float | int]]
    description: str
    tags: tuple[str, ...]
    mode: str | None = None  #: None: the library's (near-copy)
    threshold: float | None = None  #: its own, where the library's would not fit its mode


#: The contains-mode patterns' own thresholds: midway between the most of each pattern that a held-out Bach
#: window holds in its other voices (0.935 and 0.866 over 7,485 windows) and the whole pattern (1.0).
PAIR_THRESHOLDS = {"parallel-fifths-pair": 0.97, "parallel-octaves-pair": 0.93}

BAD = {
    "parallel-fifths": Bad(
        chords([48, 55, 64, 67], [50, 57, 65, 69], [52, 59, 67, 71], [53, 60, 69, 72]),
        "Root-position triads planed up by step (C-D-E-F): parallel fifths between bass and tenor and "
        "parallel twelfths between the outer voices.",
        ("voice-leading", "parallel-fifths"),
    ),
    "parallel-octaves": Bad(
        chords([48, 64, 67, 72], [52, 60, 67, 76], [53, 60, 69, 77], [55, 62, 71, 79]),
        "Outer voices doubling each other two octaves apart through four chords (C-E-F-G): parallel octaves.",
        ("voice-leading", "parallel-octaves"),
    ),
    "parallel-fifths-inner": Bad(
        chords([43, 62, 67, 71], [45, 64, 69, 72], [47, 66, 71, 74], [48, 67, 72, 76], beats=1.0),
        "Four voices planed up the G major scale in quarter notes: parallel twelfths between bass and tenor and "
        "parallel double octaves between bass and alto.",
        ("voice-leading", "parallel-fifths"),
    ),
    "parallel-fifths-pair": Bad(
        chords([48, 55], [50, 57], [52, 59], [53, 60]),
        "Two voices rising by step in parallel fifths (C-G, D-A, E-B, F-C) in half notes, matched in contains "
        "mode: the fault vetoes wherever it sounds, whatever the other voices do.",
        ("voice-leading", "parallel-fifths"),
        "contains",
        PAIR_THRESHOLDS["parallel-fifths-pair"],
    ),
    "parallel-octaves-pair": Bad(
        chords([48, 72], [52, 76], [53, 77], [55, 79]),
        "Two voices two octaves apart moving together (C-E-F-G) in half notes, matched in contains mode: "
        "parallel octaves veto wherever they sound, whatever the other voices do.",
        ("voice-leading", "parallel-octaves"),
        "contains",
        PAIR_THRESHOLDS["parallel-octaves-pair"],
    ),
    "chromatic-run": Bad(
        melody(list(range(60, 73)) + list(range(71, 59, -1)), beats=0.25),
        "An out-of-key chromatic scale in sixteenths, up an octave from C4 and back.",
        ("melody", "out-of-key"),
    ),
    "chromatic-cluster": Bad(
        [n(p, 0.0, 2.0) for p in range(55, 67)] + [n(p, 2.0, 4.0) for p in range(57, 69)],
        "Two held chromatic clusters of twelve adjacent semitones.",
        ("harmony", "cluster"),
    ),
    "tritone-leaps": Bad(
        melody([65, 71, 65, 71, 64, 70, 64, 70]),
        "A melody leaping back and forth by tritones (F-B, E-Bb) in quarter notes.",
        ("melody", "tritone"),
    ),
    "jagged-leaps": Bad(
        melody([60, 71, 57, 74, 55, 73, 58, 72]),
        "A melody of unprepared sevenths and ninths in alternating directions.",
        ("melody", "leaps"),
    ),
}


def main() -> int:
    root = Path(sys.argv[sys.argv.index("--to") + 1]) if "--to" in sys.argv else DEFAULT_ROOT
    if (root / MANIFEST_NAME).exists() and "--force" not in sys.argv:
        print(f"{root / MANIFEST_NAME} exists; pass --force to rebuild", file=sys.stderr)
        return 2
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    for sub in ("good", "bad"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True)
    library = Library.init(
        root,
        name="rollmatch-default",
        description="Bach chorale phrases as good exemplars; voice-leading and melodic faults as bad ones.",
    )
    for path, phrase_end in eligible_chorales()[::STRIDE][:GOOD_COUNT]:
        work = path.stem  # e.g. bwv269
        shutil.copyfile(path, root / "good" / path.name)
        spec = ExemplarSpec(
            label=Label.GOOD,
            start_beat=0.0,
            end_beat=phrase_end,
            tags=("bach", "chorale", "phrase"),
            description=f"First phrase (to the first fermata) of J.S. Bach's chorale {work.upper()}, four voices.",
            provenance=f"music21 corpus bach/{path.name}; J.S. Bach, public domain",
        )
        library = library.add(root / "good" / path.name, spec, exemplar_id=f"{work}-phrase1")
    for name, bad in BAD.items():
        (root / "bad" / f"{name}.json").write_text(json.dumps(bad.notes, indent=1) + "\n")
        spec = ExemplarSpec(
            label=Label.BAD,
            threshold=bad.threshold,
            mode=bad.mode,
            tags=bad.tags,
            description=bad.description,
            provenance="composed for rollmatch's default library (CC0)",
        )
        library = library.add(root / "bad" / f"{name}.json", spec, exemplar_id=name)
    print(f"wrote {len(library.exemplars)} exemplars to {root}, version {library.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
