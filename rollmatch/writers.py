"""Writing notes out as files: Standard MIDI through pretty_midi, atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from . import defaults
from .checks import number, whole_number
from .storage import write_output


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
        pretty_midi.Note(int(n["velocity"]), int(n["pitch"]), float(n["start"]) * seconds_per_beat, float(n["end"]) * seconds_per_beat)
        for n in notes
    ]
    midi.instruments.append(track)
    buffer = io.BytesIO()
    midi.write(buffer)
    write_output(target, buffer.getvalue())
    return target
