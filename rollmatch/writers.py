"""Writing notes out as files, atomically: Standard MIDI through pretty_midi, MusicXML through music21."""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import defaults
from .checks import number, whole_number
from .errors import ParameterError
from .notes import NOTE_DTYPE
from .storage import write_output

if TYPE_CHECKING:
    from music21 import key as m21key
    from music21 import stream

#: Part names of a four-voice score, top voice first.
SATB = ("Soprano", "Alto", "Tenor", "Bass")
#: Grid on which MusicXML times are laid out (ticks per beat); notes are rounded to it.
_TICKS = defaults.MIDI_TICKS_PER_BEAT
#: Quarter-length divisors of the grid a score is quantized to when music21 cannot notate its durations
#: (sixteenths and eighth-note triplets).
QUANTIZE_DIVISORS = (4, 3)

#: One chord (or lone note) of a part: start and end ticks, and its (pitch, velocity) pairs, low to high.
_Event = tuple[int, int, list[tuple[int, int]]]


def write_midi(
    path: str | os.PathLike[str],
    notes: np.ndarray,
    *,
    beats_per_bar: int = defaults.BEATS_PER_BAR,
    tempo_bpm: float = defaults.MIDI_TEMPO_BPM,
    ticks_per_beat: int = defaults.MIDI_TICKS_PER_BEAT,
    name: str = "rollmatch",
) -> Path:
    """Write notes (beats) as a one-track MIDI file in ``beats_per_bar``/4 time.

    Times become ticks at ``ticks_per_beat``; notes already on that grid (see :func:`rollmatch.notes.snap_notes`)
    read back exactly. The file is replaced atomically, so a reader never sees half of it.
    """
    import pretty_midi  # noqa: PLC0415  (lazy: import rollmatch stays light)

    target = Path(path)
    whole_number(beats_per_bar, "beats_per_bar", at_least=1, at_most=defaults.MAX_BEATS_PER_BAR)
    number(tempo_bpm, "tempo_bpm", above=0)
    seconds_per_beat = 60.0 / tempo_bpm
    midi = pretty_midi.PrettyMIDI(resolution=ticks_per_beat, initial_tempo=tempo_bpm)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(beats_per_bar, 4, 0.0))
    track = pretty_midi.Instrument(program=0, name=name)
    track.notes = [
        pretty_midi.Note(
            int(n["velocity"]),
            int(n["pitch"]),
            float(n["start"]) * seconds_per_beat,
            float(n["end"]) * seconds_per_beat,
        )
        for n in notes
    ]
    midi.instruments.append(track)
    buffer = io.BytesIO()
    midi.write(buffer)
    write_output(target, buffer.getvalue())
    return target


def write_musicxml(
    path: str | os.PathLike[str],
    notes: np.ndarray,
    *,
    voices: Sequence[int] | np.ndarray | None = None,
    beats_per_bar: int = defaults.BEATS_PER_BAR,
    tempo_bpm: float = defaults.MIDI_TEMPO_BPM,
    key: m21key.Key | str | None = None,
    title: str = "rollmatch",
    part_names: Sequence[str] | None = None,
) -> Path:
    """Write notes (start and end in quarter-note beats) as a MusicXML score in ``beats_per_bar``/4 time.

    ``voices`` gives each note's voice (0 = the top one); each distinct voice becomes a part, top voice first,
    named by ``part_names`` or else Soprano, Alto, Tenor, Bass (four parts) or Voice 1, Voice 2...; without
    ``voices`` the score has one part. In a part, notes starting together form a chord that lasts as long as
    its longest note, and a note still sounding at the part's next onset is cut there, so each part is one
    line; rests fill the gaps and notes crossing a bar line are tied. ``tempo_bpm`` is quarter notes per
    minute, shown at the start. ``key`` is a music21 Key or a name such as 'G major', 'e minor' or 'F# minor';
    without one it is inferred from the notes (music21's key analysis). Times are rounded to 1/480 beat; if
    music21 cannot notate a duration there, it quantizes every onset and length to sixteenths or eighth-note
    triplets instead. The file is replaced atomically, so a reader never sees half of it.
    """
    # music21 is imported lazily, here and below, so that import rollmatch stays light
    from music21 import exceptions21  # noqa: PLC0415  (music21 loads slowly: only when a file is written)

    target = Path(path)
    bar = whole_number(beats_per_bar, "beats_per_bar", at_least=1, at_most=defaults.MAX_BEATS_PER_BAR)
    bpm = number(tempo_bpm, "tempo_bpm", above=0)
    _check_notes(notes)
    voice_of = _voice_indices(voices, notes.size)
    voice_ids = sorted({int(v) for v in voice_of}) or [0]
    names = _part_names(part_names, len(voice_ids))
    if not isinstance(title, str):
        raise ParameterError(f"title={title!r} must be a string")
    chosen_key = None if key is None else _parse_key(key)

    start = np.round(notes["start"] * _TICKS).astype(np.int64)
    end = np.round(notes["end"] * _TICKS).astype(np.int64)
    pitch = notes["pitch"].astype(np.int64)
    velocity = notes["velocity"].astype(np.int64)
    members = [np.flatnonzero(voice_of == v) for v in voice_ids]
    lines = [_line(start[i], end[i], pitch[i], velocity[i]) for i in members]
    score, chosen_key = _score(lines, names, bar=bar, bpm=bpm, title=title, key=chosen_key)
    data = None
    if _notatable(score):
        try:
            data = _musicxml(score)
        except exceptions21.Music21Exception:  # a duration music21 can lay out but not write: quantize below
            data = None
    if data is None:
        lines = [_line(*_quantized(start[i], end[i]), pitch[i], velocity[i]) for i in members]
        score, _ = _score(lines, names, bar=bar, bpm=bpm, title=title, key=chosen_key)
        data = _musicxml(score)
    write_output(target, data)
    return target


def _check_notes(notes: object) -> None:
    if not isinstance(notes, np.ndarray) or notes.ndim != 1 or notes.dtype.names is None:
        got = (
            f"an array of {notes.dtype}, shape {notes.shape}" if isinstance(notes, np.ndarray) else type(notes).__name__
        )
        raise ParameterError(f"notes must be a one-dimensional note array (dtype NOTE_DTYPE), got {got}")
    missing = [field for field in NOTE_DTYPE.names or () if field not in notes.dtype.names]
    if missing:
        raise ParameterError(f"notes lack the field {missing[0]!r} of a note array (dtype NOTE_DTYPE)")


def _voice_indices(voices: Sequence[int] | np.ndarray | None, count: int) -> np.ndarray:
    """Each note's voice as an int array, or :class:`ParameterError` naming what is wrong."""
    if voices is None:
        return np.zeros(count, dtype=np.int64)
    array = np.asarray(voices)
    if array.ndim != 1:
        raise ParameterError(f"voices must be a list of voice numbers, one per note, got shape {array.shape}")
    if array.size != count:
        raise ParameterError(f"voices has {array.size} entries for {count} notes")
    if array.size and array.dtype.kind not in "iu":
        if array.dtype.kind != "f":
            raise ParameterError(f"voices must be whole numbers >= 0, got {array.dtype} values")
        with np.errstate(invalid="ignore"):
            fractional = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if fractional.size:
            raise ParameterError(f"voices[{fractional[0]}]={array[fractional[0]]:g} must be a whole number >= 0")
    indices = array.astype(np.int64)
    negative = np.flatnonzero(indices < 0)
    if negative.size:
        raise ParameterError(f"voices[{negative[0]}]={indices[negative[0]]} must be a whole number >= 0")
    return indices


def _part_names(part_names: Sequence[str] | None, count: int) -> list[str]:
    if part_names is None:
        return list(SATB) if count == len(SATB) else [f"Voice {i + 1}" for i in range(count)]
    if isinstance(part_names, str) or not all(isinstance(name, str) for name in part_names):
        raise ParameterError(f"part_names={part_names!r} must be a list of strings, one per part")
    if len(part_names) != count:
        raise ParameterError(f"part_names has {len(part_names)} names for {count} parts")
    return list(part_names)


def _parse_key(value: object) -> m21key.Key:
    """A music21 Key from a Key or a name such as 'G major', 'e minor', 'F# minor' or 'B- major'."""
    from music21 import exceptions21  # noqa: PLC0415  (music21 loads slowly: only when a file is written)
    from music21 import key as m21key  # noqa: PLC0415  (music21 loads slowly: only when a file is written)

    if isinstance(value, m21key.Key):
        parsed = value
    elif isinstance(value, str):
        words = value.split()
        try:
            if not 1 <= len(words) <= 2:
                raise ValueError(value)
            parsed = m21key.Key(*words)
        except (ValueError, exceptions21.Music21Exception):  # PitchException, AccidentalException, ScaleException
            raise ParameterError(f"key={value!r} is not a key; give e.g. 'G major' or 'e minor'") from None
    else:
        raise ParameterError(f"key={value!r} must be a music21 Key or a name such as 'G major' or 'e minor'")
    if abs(parsed.sharps) > defaults.MAX_KEY_SHARPS:
        shown = repr(value) if isinstance(value, str) else str(value)
        raise ParameterError(f"key={shown} needs {abs(parsed.sharps)} sharps or flats; give an enharmonic key")
    return parsed


def _line(start: np.ndarray, end: np.ndarray, pitch: np.ndarray, velocity: np.ndarray) -> list[_Event]:
    """One part's notes (ticks) as chords in time order: notes with one start form a chord lasting to the
    latest end, cut at the next start; a unison keeps its loudest velocity. Notes of no length are left out."""
    sounding = end > start
    start, end, pitch, velocity = start[sounding], end[sounding], pitch[sounding], velocity[sounding]
    order = np.lexsort((pitch, start))
    start, end, pitch, velocity = start[order], end[order], pitch[order], velocity[order]
    onsets, first = np.unique(start, return_index=True)
    bounds = [*first.tolist(), start.size]
    events: list[_Event] = []
    for k, onset in enumerate(onsets.tolist()):
        here = slice(bounds[k], bounds[k + 1])
        stop = int(end[here].max())
        if k + 1 < onsets.size:
            stop = min(stop, int(onsets[k + 1]))
        loudest: dict[int, int] = {}
        for p, v in zip(pitch[here].tolist(), velocity[here].tolist(), strict=True):
            loudest[p] = max(loudest.get(p, 0), v)
        events.append((onset, stop, sorted(loudest.items())))
    return events


def _quantized(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One part's note times (ticks) quantized by music21 to sixteenths and eighth-note triplets."""
    from music21 import note, stream  # noqa: PLC0415  (music21 loads slowly: only when a file is written)

    flat: stream.Stream = stream.Stream()
    placed = []
    for i in np.argsort(start, kind="stable").tolist():
        if end[i] > start[i]:
            element = note.Note(quarterLength=_quarters(end[i] - start[i]))
            flat.insert(_quarters(start[i]), element)
            placed.append((i, element))
    flat.sort()
    flat.quantize(QUANTIZE_DIVISORS, inPlace=True)
    new_start, new_end = start.copy(), end.copy()
    for i, element in placed:
        onset = Fraction(flat.elementOffset(element)) * _TICKS
        length = Fraction(element.duration.quarterLength) * _TICKS
        new_start[i], new_end[i] = round(onset), round(onset + length)
    return new_start, new_end


def _quarters(ticks: int) -> Fraction:
    return Fraction(int(ticks), _TICKS)


def _score(
    lines: list[list[_Event]], names: list[str], *, bar: int, bpm: float, title: str, key: m21key.Key | None
) -> tuple[stream.Score, m21key.Key]:
    """A notated score of the parts' lines (bars, ties, clefs, key, meter, tempo) and the key it is in."""
    from music21 import chord, clef, duration, instrument, metadata, meter, note, tempo  # noqa: PLC0415  (music21 loads slowly: only when a file is written)
    from music21 import key as m21key  # noqa: PLC0415  (music21 loads slowly: only when a file is written)
    from music21 import stream as m21stream  # noqa: PLC0415  (music21 loads slowly: only when a file is written)

    bar_ticks = bar * _TICKS
    last = max((line[-1][1] for line in lines if line), default=0)
    total = max(1, -(-last // bar_ticks)) * bar_ticks
    score = m21stream.Score()
    score.metadata = metadata.Metadata(title=title)
    for number_, (line, name) in enumerate(zip(lines, names, strict=True), start=1):
        part = m21stream.Part(id=f"P{number_}")
        part.partName = name
        performer = instrument.Instrument()
        performer.partId, performer.partName = f"P{number_}", name  # a fixed id (else random): same notes, same file
        part.insert(0, performer)
        cursor = 0
        for onset, stop, sounding in [*line, (total, total, [])]:
            if onset > cursor:
                part.insert(_quarters(cursor), note.Rest(quarterLength=_quarters(onset - cursor)))
            if sounding:
                tones = []
                for p, v in sounding:
                    tone = note.Note(p)
                    tone.volume.velocity = v
                    tones.append(tone)
                element = tones[0] if len(tones) == 1 else chord.Chord(tones)
                element.duration = duration.Duration(_quarters(stop - onset))
                part.insert(_quarters(onset), element)
            cursor = stop
        part.insert(0, clef.bestClef(part, allowTreble8vb=True, recurse=True) if line else clef.TrebleClef())
        score.insert(0, part)
    if key is None:
        key = score.analyze("key") if any(lines) else m21key.Key("C")
    for index, part in enumerate(score.parts):
        part.insert(0, copy.deepcopy(key))
        part.insert(0, meter.TimeSignature(f"{bar}/4"))
        if index == 0:
            part.insert(0, tempo.MetronomeMark(number=bpm, referent=duration.Duration(1.0)))
    score.makeNotation(inPlace=True)
    score.splitAtDurations(recurse=True)  # what the exporter would do, with makeNotation, to a copy
    return score, key


def _musicxml(score: stream.Score) -> bytes:
    """The MusicXML bytes of a score already notated by :func:`_score`. The exporter's own notation pass is
    skipped: it would deep-copy the score and notate it again (most of the time a write takes), to the same
    bytes."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter  # noqa: PLC0415  (music21 loads slowly: only when a file is written)

    exporter = GeneralObjectExporter(score)
    exporter.makeNotation = False
    return exporter.parse()


def _notatable(score: stream.Score) -> bool:
    """Whether music21 can name every duration in the score (none is 'inexpressible')."""
    return not any(
        "inexpressible" in (element.duration.type, *(component.type for component in element.duration.components))
        for element in score.recurse().notesAndRests
    )
