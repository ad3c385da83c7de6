from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_GOOD: _ClassVar[Verdict]
    VERDICT_VETOED: _ClassVar[Verdict]
    VERDICT_UNMATCHED: _ClassVar[Verdict]
VERDICT_UNSPECIFIED: Verdict
VERDICT_GOOD: Verdict
VERDICT_VETOED: Verdict
VERDICT_UNMATCHED: Verdict

class Note(_message.Message):
    __slots__ = ("pitch", "start", "end", "velocity")
    PITCH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    pitch: int
    start: float
    end: float
    velocity: int
    def __init__(self, pitch: _Optional[int] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., velocity: _Optional[int] = ...) -> None: ...

class NoteList(_message.Message):
    __slots__ = ("notes",)
    NOTES_FIELD_NUMBER: _ClassVar[int]
    notes: _containers.RepeatedCompositeFieldContainer[Note]
    def __init__(self, notes: _Optional[_Iterable[_Union[Note, _Mapping]]] = ...) -> None: ...

class FileData(_message.Message):
    __slots__ = ("data", "format", "name")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    format: str
    name: str
    def __init__(self, data: _Optional[bytes] = ..., format: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Fragment(_message.Message):
    __slots__ = ("notes", "file", "origin_beats")
    NOTES_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_BEATS_FIELD_NUMBER: _ClassVar[int]
    notes: NoteList
    file: FileData
    origin_beats: float
    def __init__(self, notes: _Optional[_Union[NoteList, _Mapping]] = ..., file: _Optional[_Union[FileData, _Mapping]] = ..., origin_beats: _Optional[float] = ...) -> None: ...

class ScoreOptions(_message.Message):
    __slots__ = ("transpose_range", "stretches", "good_threshold", "bad_threshold", "top_k", "min_coverage")
    TRANSPOSE_RANGE_FIELD_NUMBER: _ClassVar[int]
    STRETCHES_FIELD_NUMBER: _ClassVar[int]
    GOOD_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BAD_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    transpose_range: int
    stretches: _containers.RepeatedScalarFieldContainer[float]
    good_threshold: float
    bad_threshold: float
    top_k: int
    min_coverage: float
    def __init__(self, transpose_range: _Optional[int] = ..., stretches: _Optional[_Iterable[float]] = ..., good_threshold: _Optional[float] = ..., bad_threshold: _Optional[float] = ..., top_k: _Optional[int] = ..., min_coverage: _Optional[float] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("exemplar", "similarity", "transpose", "shift_beats", "stretch", "coverage", "threshold")
    EXEMPLAR_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    TRANSPOSE_FIELD_NUMBER: _ClassVar[int]
    SHIFT_BEATS_FIELD_NUMBER: _ClassVar[int]
    STRETCH_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    exemplar: str
    similarity: float
    transpose: int
    shift_beats: float
    stretch: float
    coverage: float
    threshold: float
    def __init__(self, exemplar: _Optional[str] = ..., similarity: _Optional[float] = ..., transpose: _Optional[int] = ..., shift_beats: _Optional[float] = ..., stretch: _Optional[float] = ..., coverage: _Optional[float] = ..., threshold: _Optional[float] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("verdict", "score", "good", "bad", "top", "library_version", "nearest", "min_coverage")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    GOOD_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    MIN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    score: float
    good: Match
    bad: Match
    top: _containers.RepeatedCompositeFieldContainer[Match]
    library_version: str
    nearest: Match
    min_coverage: float
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., score: _Optional[float] = ..., good: _Optional[_Union[Match, _Mapping]] = ..., bad: _Optional[_Union[Match, _Mapping]] = ..., top: _Optional[_Iterable[_Union[Match, _Mapping]]] = ..., library_version: _Optional[str] = ..., nearest: _Optional[_Union[Match, _Mapping]] = ..., min_coverage: _Optional[float] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("fragments", "options")
    FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    fragments: _containers.RepeatedCompositeFieldContainer[Fragment]
    options: ScoreOptions
    def __init__(self, fragments: _Optional[_Iterable[_Union[Fragment, _Mapping]]] = ..., options: _Optional[_Union[ScoreOptions, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("results", "library_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Result]
    library_version: str
    def __init__(self, results: _Optional[_Iterable[_Union[Result, _Mapping]]] = ..., library_version: _Optional[str] = ...) -> None: ...

class ScoreStreamRequest(_message.Message):
    __slots__ = ("id", "fragments", "options")
    ID_FIELD_NUMBER: _ClassVar[int]
    FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    fragments: _containers.RepeatedCompositeFieldContainer[Fragment]
    options: ScoreOptions
    def __init__(self, id: _Optional[str] = ..., fragments: _Optional[_Iterable[_Union[Fragment, _Mapping]]] = ..., options: _Optional[_Union[ScoreOptions, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ScoreStreamResponse(_message.Message):
    __slots__ = ("id", "results", "error", "library_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    results: _containers.RepeatedCompositeFieldContainer[Result]
    error: Error
    library_version: str
    def __init__(self, id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[Result, _Mapping]]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., library_version: _Optional[str] = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("good", "bad", "min_coverage")
    GOOD_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    MIN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    good: float
    bad: float
    min_coverage: float
    def __init__(self, good: _Optional[float] = ..., bad: _Optional[float] = ..., min_coverage: _Optional[float] = ...) -> None: ...

class GetLibraryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLibraryResponse(_message.Message):
    __slots__ = ("name", "version", "good_count", "bad_count", "thresholds", "steps_per_beat", "velocity", "default_transpose_range", "default_stretches", "mode")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GOOD_COUNT_FIELD_NUMBER: _ClassVar[int]
    BAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_BEAT_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TRANSPOSE_RANGE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STRETCHES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    good_count: int
    bad_count: int
    thresholds: Thresholds
    steps_per_beat: int
    velocity: bool
    default_transpose_range: int
    default_stretches: _containers.RepeatedScalarFieldContainer[float]
    mode: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., good_count: _Optional[int] = ..., bad_count: _Optional[int] = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., steps_per_beat: _Optional[int] = ..., velocity: _Optional[bool] = ..., default_transpose_range: _Optional[int] = ..., default_stretches: _Optional[_Iterable[float]] = ..., mode: _Optional[str] = ...) -> None: ...

class Exemplar(_message.Message):
    __slots__ = ("id", "label", "file", "start_beat", "end_beat", "tracks", "threshold", "tags", "description", "provenance", "mode")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    START_BEAT_FIELD_NUMBER: _ClassVar[int]
    END_BEAT_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    file: str
    start_beat: float
    end_beat: float
    tracks: _containers.RepeatedScalarFieldContainer[str]
    threshold: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    description: str
    provenance: str
    mode: str
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., file: _Optional[str] = ..., start_beat: _Optional[float] = ..., end_beat: _Optional[float] = ..., tracks: _Optional[_Iterable[str]] = ..., threshold: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., provenance: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class ListExemplarsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExemplarsResponse(_message.Message):
    __slots__ = ("exemplars", "library_version")
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    exemplars: _containers.RepeatedCompositeFieldContainer[Exemplar]
    library_version: str
    def __init__(self, exemplars: _Optional[_Iterable[_Union[Exemplar, _Mapping]]] = ..., library_version: _Optional[str] = ...) -> None: ...

class AddExemplarRequest(_message.Message):
    __slots__ = ("file", "label", "id", "start_beat", "end_beat", "tracks", "threshold", "tags", "description", "provenance", "mode")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    START_BEAT_FIELD_NUMBER: _ClassVar[int]
    END_BEAT_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    file: FileData
    label: str
    id: str
    start_beat: float
    end_beat: float
    tracks: _containers.RepeatedScalarFieldContainer[str]
    threshold: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    description: str
    provenance: str
    mode: str
    def __init__(self, file: _Optional[_Union[FileData, _Mapping]] = ..., label: _Optional[str] = ..., id: _Optional[str] = ..., start_beat: _Optional[float] = ..., end_beat: _Optional[float] = ..., tracks: _Optional[_Iterable[str]] = ..., threshold: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., provenance: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class AddExemplarResponse(_message.Message):
    __slots__ = ("exemplar", "library_version")
    EXEMPLAR_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    exemplar: Exemplar
    library_version: str
    def __init__(self, exemplar: _Optional[_Union[Exemplar, _Mapping]] = ..., library_version: _Optional[str] = ...) -> None: ...

class RemoveExemplarRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RemoveExemplarResponse(_message.Message):
    __slots__ = ("library_version",)
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    library_version: str
    def __init__(self, library_version: _Optional[str] = ...) -> None: ...

class SetThresholdsRequest(_message.Message):
    __slots__ = ("good", "bad", "min_coverage")
    GOOD_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    MIN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    good: float
    bad: float
    min_coverage: float
    def __init__(self, good: _Optional[float] = ..., bad: _Optional[float] = ..., min_coverage: _Optional[float] = ...) -> None: ...

class SetThresholdsResponse(_message.Message):
    __slots__ = ("thresholds", "library_version")
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    thresholds: Thresholds
    library_version: str
    def __init__(self, thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., library_version: _Optional[str] = ...) -> None: ...
