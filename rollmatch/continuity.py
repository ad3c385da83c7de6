"""Musical continuity: the constraints a search's candidate bar must meet to join what precedes it.

Pure functions over note arrays (beats) and voice numbers (:func:`rollmatch.notes.split_voices`). A candidate
bar must stay within a register, join the bar before it by voice-leading (no voice leaps further than
``max_leap`` semitones across the bar line), keep a key when one is asked for, and not be degenerate (one
note or one repeated note, one chord held or struck again, or a lone voice where the material has several).
These are checked before a candidate is scored, so they cost no evaluations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import defaults
from .checks import number, whole_number
from .errors import ParameterError
from .notes import pitch_name, polyphony

#: Pitch classes of the major scale, and of the minor one (natural, with the raised sixth and seventh of the
#: melodic and harmonic minor), above the tonic.
MAJOR_CLASSES = frozenset((0, 2, 4, 5, 7, 9, 11))
MINOR_CLASSES = frozenset((0, 2, 3, 5, 7, 8, 9, 10, 11))
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_PATTERN = re.compile(r"^\s*([A-Ga-g])\s*(#|b|-|sharp|flat)?\s*(major|minor|maj|min|M|m)?\s*$")
#: A note name for a range: a letter, an accidental (# or b) and an octave, which may be -1 (C-1 is MIDI 0).
_NOTE_PATTERN = re.compile(r"^\s*([A-Ga-g])(#|b)?(-1|\d)\s*$")


@dataclass(frozen=True)
class Key:
    """A key: ``tonic`` pitch class (0 = C) and ``minor`` or major."""

    tonic: int
    minor: bool = False

    @property
    def name(self) -> str:
        names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"

    def classes(self) -> frozenset[int]:
        """The pitch classes that belong to the key."""
        return frozenset((self.tonic + c) % 12 for c in (MINOR_CLASSES if self.minor else MAJOR_CLASSES))


def parse_key(text: str) -> Key:
    """'G major', 'e minor', 'F#', 'Bb minor', 'f#m' (a lone lower-case letter is minor, as in music21)."""
    found = _KEY_PATTERN.match(text) if isinstance(text, str) else None
    if not found:
        raise ParameterError(f"key={text!r} is not a key; give e.g. 'G major', 'e minor' or 'Bb'")
    letter, accidental, mode = found.groups()
    tonic = (
        _LETTERS[letter.upper()] + {"#": 1, "sharp": 1, "b": -1, "-": -1, "flat": -1}.get((accidental or "").lower(), 0)
    ) % 12
    minor = mode in ("minor", "min", "m") if mode else letter.islower()  # M is major, m minor, as in chord symbols
    return Key(tonic, minor)


def infer_key(notes: np.ndarray) -> Key:
    """The key of ``notes`` by music21's Krumhansl-Schmuckler analysis (weighted by duration)."""
    if notes.size == 0:
        raise ParameterError("cannot infer a key from a start with no notes; give --key")
    from music21 import note, stream  # noqa: PLC0415  (music21 is slow to import: only when a key is inferred)

    part: stream.Stream[note.Note] = stream.Stream()
    for n in notes:
        m21 = note.Note(int(n["pitch"]))
        m21.quarterLength = max(float(n["end"] - n["start"]), 1 / 12)
        part.insert(float(n["start"]), m21)
    found = part.analyze("key")
    return Key(found.tonic.pitchClass, found.mode == "minor")


def parse_range(text: str) -> tuple[int, int]:
    """'C2-A5' or '36-81' as (lowest, highest) MIDI pitch."""
    parts = re.split(r"(?<=\d)\s*-\s*|\s*\.\.\s*|\s*:\s*", text.strip()) if isinstance(text, str) else []
    if len(parts) != 2:
        raise ParameterError(f"range={text!r} must be LOW-HIGH, as MIDI numbers or note names: e.g. 36-81 or C2-A5")
    low, high = (_pitch(p, text) for p in parts)
    if low > high:
        raise ParameterError(f"range={text!r} is empty: {pitch_name(low)} lies above {pitch_name(high)}")
    return low, high


def _pitch(text: str, whole: str) -> int:
    if text.strip().isdigit():
        value = int(text)
    elif found := _NOTE_PATTERN.match(text):
        letter, accidental, octave = found.groups()
        value = 12 * (int(octave) + 1) + _LETTERS[letter.upper()] + {"#": 1, "b": -1}.get(accidental or "", 0)
    else:
        raise ParameterError(f"range={whole!r}: {text!r} is neither a MIDI number nor a note name such as C2 or F#5")
    if not 0 <= value <= 127:
        raise ParameterError(f"range={whole!r}: {text!r} lies outside MIDI pitch 0-127")
    return value


@dataclass(frozen=True)
class Continuity:
    """What a candidate bar must meet: pitches within [low, high] (MIDI), no voice leaping more than
    ``max_leap`` semitones across the bar line, at most ``out_of_key`` of its sounding time outside ``key``
    (when given), and more than one voice where ``polyphonic``."""

    low: int = 0
    high: int = 127
    max_leap: int = defaults.MAX_BAR_LEAP
    key: Key | None = None
    out_of_key: float = defaults.OUT_OF_KEY_SHARE
    polyphonic: bool = False

    def __post_init__(self) -> None:
        if self.key is not None and not isinstance(self.key, Key):
            raise ParameterError(f"key={self.key!r} must be a Key (see parse_key) or None")
        if not isinstance(self.polyphonic, bool):
            raise ParameterError(f"polyphonic={self.polyphonic!r} must be True or False")
        whole_number(self.low, "low", at_least=0, at_most=127)
        whole_number(self.high, "high", at_least=self.low, at_most=127)
        whole_number(self.max_leap, "max_leap", at_least=0, at_most=127)
        number(self.out_of_key, "out_of_key", at_least=0, at_most=1)

    def to_dict(self) -> dict[str, object]:
        return {
            "range": f"{pitch_name(self.low)}-{pitch_name(self.high)}",
            "max_leap": self.max_leap,
            "key": self.key.name if self.key else None,
            "out_of_key": self.out_of_key,
            "polyphonic": self.polyphonic,
        }


def fault(
    bar: np.ndarray,
    voices: np.ndarray,
    rules: Continuity,
    *,
    previous: np.ndarray | None = None,
    previous_voices: np.ndarray | None = None,
) -> str | None:
    """Why ``bar`` (beats from its start, with (n,) ``voices``) cannot follow ``previous`` (the bar before,
    beats from its start, with its voices), or None when it can. The reason names the rule, e.g.
    'register: F#1 lies below the range C2-A5'."""
    if bar.size == 0:
        return "empty: the bar has no notes"
    if (kind := degenerate(bar, polyphonic=rules.polyphonic)) is not None:
        return f"degenerate: {kind}"
    low, high = int(bar["pitch"].min()), int(bar["pitch"].max())
    if low < rules.low or high > rules.high:
        where = f"{pitch_name(low)} lies below" if low < rules.low else f"{pitch_name(high)} lies above"
        return f"register: {where} the range {pitch_name(rules.low)}-{pitch_name(rules.high)}"
    if previous is not None and previous.size and previous_voices is not None:
        leap = bar_line_leap(previous, previous_voices, bar, voices)
        if leap > rules.max_leap:
            return f"voice-leading: a voice leaps {leap} semitones across the bar line (at most {rules.max_leap})"
    if rules.key is not None:
        share = out_of_key_share(bar, rules.key)
        if share > rules.out_of_key + 1e-9:
            return f"key: {share:.0%} of the bar lies outside {rules.key.name} (at most {rules.out_of_key:.0%})"
    return None


def degenerate(notes: np.ndarray, *, polyphonic: bool) -> str | None:
    """The degenerate probe family (:mod:`rollmatch.probes`) that ``notes`` belongs to, or None, judged on
    what sounds, as the piano roll does: one pitch throughout ('one held note' or 'one repeated note'), one set
    of pitches throughout ('one chord, held or repeated': a chord struck again sounds like one held), or,
    where ``polyphonic`` material is expected, never two pitches at once ('a lone voice'; a unison is one)."""
    if notes.size == 0:
        return None
    if np.unique(notes["pitch"]).size == 1:
        return "one held note" if notes.size == 1 else "one repeated note"
    sets = {
        frozenset(notes["pitch"][(notes["start"] <= t) & (notes["end"] > t)].tolist())
        for t in np.unique(notes["start"])
    }
    if len(sets) == 1:
        return "one chord, held or repeated"
    if polyphonic and max(len(s) for s in sets) == 1:
        return "a lone voice"
    return None


def bar_line_leap(previous: np.ndarray, previous_voices: np.ndarray, bar: np.ndarray, voices: np.ndarray) -> int:
    """The largest leap (semitones) from a voice's last note in ``previous`` to its first note in ``bar``. Voices
    pair by number when both bars have the same ones; otherwise (a voice rests, or the numbers were inferred
    bar by bar) by rank, the top voice with the top voice and the bottom with the bottom."""

    def ends(notes: np.ndarray, numbers: np.ndarray, last: bool) -> list[tuple[float, int]]:
        """(mean pitch, the voice's last or first pitch) per voice, highest voice first."""
        out = []
        for v in np.unique(numbers):
            line = notes[numbers == v]
            at = np.argmax(line["start"]) if last else np.argmin(line["start"])
            out.append((float(line["pitch"].mean()), int(line["pitch"][at])))
        return sorted(out, reverse=True)

    before, after = ends(previous, previous_voices, True), ends(bar, voices, False)
    if not before or not after:
        return 0
    if set(np.unique(previous_voices).tolist()) == set(np.unique(voices).tolist()):
        pairs = list(zip(before, after, strict=True))
    else:
        pairs = [(before[0], after[0]), (before[-1], after[-1])]
    return max(abs(b[1] - a[1]) for a, b in pairs)


def out_of_key_share(notes: np.ndarray, key: Key) -> float:
    """The share of the notes' sounding time (beats) on pitch classes outside ``key``."""
    length = notes["end"] - notes["start"]
    total = float(length.sum())
    if total <= 0:
        return 0.0
    inside = np.isin(notes["pitch"] % 12, sorted(key.classes()))
    return float(length[~inside].sum()) / total


def material_rules(
    exemplars: list[tuple[np.ndarray, np.ndarray]],
    *,
    beats_per_bar: int,
    register: tuple[int, int] | None = None,
    key: Key | None = None,
) -> Continuity:
    """The constraints a library's good exemplars set, as (notes, voices) pairs: their register (unless
    ``register`` is given), the larger of MAX_BAR_LEAP and their own largest leap across a bar line, and
    polyphony when every one of them has more than one voice."""
    if register is None:
        pitches = [n["pitch"] for n, _ in exemplars if n.size]
        register = (int(min(p.min() for p in pitches)), int(max(p.max() for p in pitches))) if pitches else (0, 127)
    leap = defaults.MAX_BAR_LEAP
    for notes, voices in exemplars:
        for line in (np.sort(notes[voices == v], order="start") for v in np.unique(voices)):
            bar = np.floor(line["start"] / beats_per_bar)
            crossing = np.flatnonzero(np.diff(bar) > 0)
            if crossing.size:
                leap = max(leap, int(np.abs(np.diff(line["pitch"].astype(np.int64))[crossing]).max()))
    polyphonic = bool(exemplars) and all(polyphony(n) > 1 for n, _ in exemplars)
    return Continuity(register[0], register[1], leap, key, defaults.OUT_OF_KEY_SHARE, polyphonic)
