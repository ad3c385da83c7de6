"""Piano rolls: note arrays rendered as pitch × time matrices on a grid of steps per beat."""

from __future__ import annotations

import numpy as np

from . import defaults
from .checks import whole_number
from .errors import LimitError

N_PITCHES = 128


def check_steps_per_beat(steps_per_beat: int) -> int:
    """Validate the grid resolution, returning it as an int."""
    return whole_number(steps_per_beat, "steps_per_beat", at_least=1, at_most=defaults.MAX_STEPS_PER_BEAT)


def note_steps(notes: np.ndarray, steps_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and offset steps (int64, shape (n,)) of each note; a note always covers at least one step.

    Times round half up to the nearest step, so notes shorter than a step, zero-length ones included,
    still occupy the step where they start.
    """
    on = np.floor(notes["start"] * steps_per_beat + 0.5 + defaults.STEP_ROUNDING_SLACK).astype(np.int64)
    off = np.floor(notes["end"] * steps_per_beat + 0.5 + defaults.STEP_ROUNDING_SLACK).astype(np.int64)
    return on, np.maximum(off, on + 1)


def render(rows: np.ndarray, on: np.ndarray, off: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float32 matrix of ``shape`` (rows, steps) with each note's value over [on, off) in its row.

    Where notes overlap the cell holds the largest value, never a sum.
    """
    n_rows, n_steps = shape
    if n_steps > defaults.MAX_BEATS * defaults.MAX_STEPS_PER_BEAT:
        raise LimitError(f"a roll of {n_steps} steps exceeds the limit")
    out = np.zeros(shape, dtype=np.float32)
    if rows.size == 0:
        return out
    if np.all(values == values[0]):
        # One value everywhere: mark [on, off) with +1/-1 and integrate along time.
        edges = np.zeros((n_rows, n_steps + 1), dtype=np.int32)
        np.add.at(edges, (rows, on), 1)
        np.add.at(edges, (rows, off), -1)
        out[np.cumsum(edges[:, :-1], axis=1) > 0] = values[0]
        return out
    for i in np.argsort(values, kind="stable"):  # ascending, so louder notes overwrite softer ones
        out[rows[i], on[i] : off[i]] = values[i]
    return out


def runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of constant nonzero value in each row of ``rows`` (R, T): (row, on, off, value), row-major, with
    each run covering steps [on, off) of its row."""
    n_rows, steps = rows.shape
    padded = np.zeros((n_rows, steps + 2), dtype=np.float64)
    padded[:, 1:-1] = rows
    row, edge = np.nonzero(padded[:, 1:] != padded[:, :-1])  # edge k: between step k - 1 and step k
    same = row[1:] == row[:-1]
    row, on, off = row[:-1][same], edge[:-1][same], edge[1:][same]
    value = rows[row, on] if row.size else np.zeros(0)
    keep = value > 0
    return (
        row[keep].astype(np.int64),
        on[keep].astype(np.int64),
        off[keep].astype(np.int64),
        value[keep].astype(np.float64),
    )


def note_values(notes: np.ndarray, *, velocity: bool) -> np.ndarray:
    """Cell value of each note: 1, or velocity / 127 when weighting by velocity."""
    if velocity:
        return notes["velocity"].astype(np.float32) / 127.0
    return np.ones(notes.size, dtype=np.float32)


def piano_roll(
    notes: np.ndarray, *, steps_per_beat: int = defaults.STEPS_PER_BEAT, velocity: bool = False
) -> np.ndarray:
    """The (128, steps) float32 piano roll of ``notes`` from beat 0 to the last note's end.

    Binary (1 where a note sounds) by default; with ``velocity`` each cell holds velocity / 127.
    """
    steps_per_beat = check_steps_per_beat(steps_per_beat)
    on, off = note_steps(notes, steps_per_beat)
    n_steps = int(off.max()) if off.size else 0
    return render(notes["pitch"].astype(np.int64), on, off, note_values(notes, velocity=velocity), (N_PITCHES, n_steps))
