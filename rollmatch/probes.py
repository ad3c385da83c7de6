"""Degenerate probes: the trivial material an optimizer tries first against a critic.

A phrase search is an optimizer, and it finds a verdict's loopholes before it finds music: a held note, a
repeated note, a scale, a lone voice of an exemplar. ``rollmatch library check`` scores a fixed, seeded set of
such probes and reports every one judged GOOD (:mod:`rollmatch.lint`). The families:

- **held notes** at five registers (C2-C6) and three lengths, and **held chords** (major and minor triads,
  a close and an open four-note chord) at three registers and three lengths; with the engine's transpositions
  of ±12 semitones these reach every register in between;
- **repeated notes** in quarters and eighths, **scale runs** and **arpeggios** up and down, and seeded
  **random walks** in C major;
- for every good exemplar: each of its **lone voices** (top, bottom, each inner one), its **rhythm on one
  pitch**, and its **opening chord held** for a beat and for its whole length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import defaults
from .notes import NOTE_DTYPE, pitch_name, sort_notes, span_beats

#: Lengths (beats) of the held notes and chords, and of the repeated notes.
HELD_BEATS = (1.0, 4.0, 16.0)
REPEATED_BEATS = (4.0, 16.0)
#: MIDI pitches of the held notes, and roots of the chords, runs and repeated notes.
HELD_PITCHES = (36, 48, 60, 72, 84)
CHORD_ROOTS = (48, 60, 72)
#: Chords above their root: semitones.
CHORDS = {
    "major triad": (0, 4, 7),
    "minor triad": (0, 3, 7),
    "close four-note chord": (0, 4, 7, 12),
    "open four-note chord": (-12, -5, 4, 12),
}
#: C major, one octave of scale degrees in semitones.
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
#: Random walks in C major: how many, their length (beats), and the note lengths (beats) they draw from.
RANDOM_WALKS = 8
RANDOM_WALK_BEATS = 16.0
RANDOM_WALK_DURATIONS = (0.5, 1.0)


@dataclass(frozen=True)
class Probe:
    """One degenerate fragment: its family (e.g. 'held note'), a name for people and its notes (beats)."""

    family: str
    name: str
    notes: np.ndarray


def _notes(rows: Sequence[tuple[int, float, float]]) -> np.ndarray:
    return sort_notes(np.array([(p, s, e, defaults.VELOCITY) for p, s, e in rows], dtype=NOTE_DTYPE))


def _in_key(root: int, degree: int) -> int:
    """The pitch ``degree`` scale steps above ``root`` in its major scale (degree may exceed an octave)."""
    octave, step = divmod(degree, len(MAJOR_SCALE))
    return root + 12 * octave + MAJOR_SCALE[step]


def generic_probes(*, seed: int = defaults.PROBE_SEED) -> list[Probe]:
    """The probes that need no library: held notes and chords, repeated notes, runs, arpeggios, random walks."""
    probes = [
        Probe("held note", f"{pitch_name(p)} held {beats:g} beats", _notes([(p, 0.0, beats)]))
        for p in HELD_PITCHES
        for beats in HELD_BEATS
    ]
    probes += [
        Probe(
            "held chord",
            f"{name} on {pitch_name(root)} held {beats:g} beats",
            _notes([(root + i, 0.0, beats) for i in shape]),
        )
        for name, shape in CHORDS.items()
        for root in CHORD_ROOTS
        for beats in HELD_BEATS
    ]
    for root in CHORD_ROOTS:
        for step, value in ((1.0, "quarters"), (0.5, "eighths")):
            for beats in REPEATED_BEATS:
                count = int(beats / step)
                probes.append(
                    Probe(
                        "repeated note",
                        f"{pitch_name(root)} repeated in {value}, {beats:g} beats",
                        _notes([(root, i * step, (i + 1) * step) for i in range(count)]),
                    )
                )
    for root in CHORD_ROOTS[:2]:
        for step, value in ((1.0, "quarters"), (0.5, "eighths")):
            up = [_in_key(root, d) for d in range(15)]  # two octaves
            run = up + up[-2::-1]
            probes.append(
                Probe(
                    "scale run",
                    f"C major scale from {pitch_name(root)} up and down in {value}",
                    _notes([(p, i * step, (i + 1) * step) for i, p in enumerate(run)]),
                )
            )
            up = [root + 12 * (i // 3) + (0, 4, 7)[i % 3] for i in range(7)]
            arpeggio = (up + up[-2:0:-1]) * 2
            probes.append(
                Probe(
                    "arpeggio",
                    f"C major arpeggio from {pitch_name(root)} up and down in {value}",
                    _notes([(p, i * step, (i + 1) * step) for i, p in enumerate(arpeggio)]),
                )
            )
    rng = np.random.default_rng(seed)
    for walk in range(RANDOM_WALKS):
        degree, start, rows = int(rng.integers(7, 14)), 0.0, []
        while start < RANDOM_WALK_BEATS:
            end = start + float(rng.choice(RANDOM_WALK_DURATIONS))
            rows.append((_in_key(48, degree), start, end))
            degree = int(np.clip(degree + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0, 20))
            start = end
        probes.append(Probe("random walk", f"random walk in C major no. {walk + 1}", _notes(rows)))
    return probes


def voices(notes: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """A polyphonic fragment's lone voices by rank among the notes sounding at each onset: the top voice,
    each inner voice (second from the top, ...) and the bottom voice, with their names; one voice for a
    melody. Voice crossings and rests make this an approximation, which is all a probe needs."""
    start, end, pitch = notes["start"], notes["end"], notes["pitch"]
    sounding = (start[None, :] <= start[:, None]) & (end[None, :] > start[:, None])  # (n, n): j sounds at i's onset
    above = (sounding & (pitch[None, :] > pitch[:, None])).sum(axis=1)
    below = (sounding & (pitch[None, :] < pitch[:, None])).sum(axis=1)
    count = int((above + below).max()) + 1 if notes.size else 0
    if count <= 1:
        return [("melody", notes)]
    out = [("top voice", notes[above == 0])]
    out += [(f"inner voice {k}", notes[(above == k) & (below > 0)]) for k in range(1, count - 1)]
    out.append(("bottom voice", notes[below == 0]))
    return [(name, part) for name, part in out if part.size]


def exemplar_probes(exemplar_id: str, notes: np.ndarray) -> list[Probe]:
    """Probes made from one good exemplar (notes in beats): its lone voices, its rhythm on one pitch, and its
    opening chord held for a beat and for the exemplar's length."""
    notes = notes.copy()
    origin = float(notes["start"].min())
    notes["start"] -= origin
    notes["end"] -= origin
    length = span_beats(notes)
    probes = [Probe("lone voice", f"{name} of {exemplar_id}", part) for name, part in voices(notes)]
    onsets = np.unique(notes["start"])
    ends = np.append(onsets[1:], length)
    pitch = int(np.median(notes["pitch"]))
    probes.append(
        Probe(
            "rhythm on one pitch",
            f"rhythm of {exemplar_id} on {pitch_name(pitch)}",
            _notes([(pitch, float(a), float(b)) for a, b in zip(onsets, ends, strict=True)]),
        )
    )
    opening = np.unique(notes["pitch"][notes["start"] == 0.0])
    for beats in (1.0, length):
        probes.append(
            Probe(
                "held chord",
                f"opening chord of {exemplar_id} held {beats:g} beats",
                _notes([(int(p), 0.0, beats) for p in opening]),
            )
        )
    return probes


def degenerate_probes(good: Sequence[tuple[str, np.ndarray]], *, seed: int = defaults.PROBE_SEED) -> list[Probe]:
    """Every probe: :func:`generic_probes`, then :func:`exemplar_probes` of each good exemplar (id, notes)."""
    return generic_probes(seed=seed) + [p for exemplar_id, notes in good for p in exemplar_probes(exemplar_id, notes)]
