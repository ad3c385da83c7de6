"""rollmatch: judge music fragments against hand-picked good and bad exemplars.

A fragment becomes a piano roll; an FFT cross-correlation engine compares it with every exemplar over
transpositions, time shifts and uniform time-stretches; the veto rule turns the similarities into a verdict
that names the exemplar, transposition, shift and stretch behind it.

``import rollmatch`` stays light: no cupy, no grpc, and music21 only when a score file is read.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import defaults
from .engine import BestMatches, Mode, SearchSpace, TemplateBank, match
from .errors import (
    AlreadyExistsError,
    EmptyInputError,
    InputError,
    LibraryError,
    LimitError,
    NotFoundError,
    ParameterError,
    RollmatchError,
)
from .library import Library, default_library_path
from .manifest import Exemplar, ExemplarSpec, LibraryConfig
from .notes import NOTE_DTYPE, make_notes, notes_from_records, select_beats, transform_notes
from .readers import read_notes, read_notes_bytes
from .roll import piano_roll
from .scoring import Critic, FileResult, Scorer, score_files, windows
from .verdict import Label, Match, Outcome, Thresholds, Verdict, judge

__all__ = [
    "NOTE_DTYPE",
    "AlreadyExistsError",
    "BestMatches",
    "Critic",
    "EmptyInputError",
    "Exemplar",
    "ExemplarSpec",
    "FileResult",
    "InputError",
    "Label",
    "Library",
    "LibraryConfig",
    "LibraryError",
    "LimitError",
    "Match",
    "Mode",
    "NotFoundError",
    "Outcome",
    "ParameterError",
    "RollmatchError",
    "Scorer",
    "SearchSpace",
    "TemplateBank",
    "Thresholds",
    "Verdict",
    "default_library_path",
    "defaults",
    "judge",
    "make_notes",
    "match",
    "notes_from_records",
    "piano_roll",
    "read_notes",
    "read_notes_bytes",
    "score_files",
    "select_beats",
    "transform_notes",
    "windows",
]
