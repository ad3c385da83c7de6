"""Request messages to library values and results back to messages. Every check names its field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf.unknown_fields import UnknownFieldSet

from rollmatch import defaults
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch.checks import number, whole_number
from rollmatch.engine import Mode, check_mode
from rollmatch.errors import InputError, LimitError, ParameterError, RollmatchError
from rollmatch.library import Library
from rollmatch.manifest import Exemplar, ExemplarSpec, check_label
from rollmatch.notes import notes_from_columns, span_beats
from rollmatch.readers import read_notes_bytes
from rollmatch.scoring import Scorer
from rollmatch.verdict import Label, Match, Outcome, Thresholds, Verdict

from .status import FieldError

_VERDICTS = {Outcome.GOOD: pb.VERDICT_GOOD, Outcome.VETOED: pb.VERDICT_VETOED, Outcome.UNMATCHED: pb.VERDICT_UNMATCHED}


def _field(where: str, check: Any, /, *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except RollmatchError as exc:
        raise FieldError(where, exc) from None


def _no_unknown_fields(message: Any, name: str) -> None:
    unknown = UnknownFieldSet(message)
    if len(unknown):
        raise FieldError(
            name,
            ParameterError(f"unknown option field {unknown[0].field_number}; is the client newer than this server?"),
        )


def fragments(messages: Sequence[pb.Fragment], *, field: str = "fragments") -> tuple[list[np.ndarray], list[float]]:
    """Notes (beats) and origins of each fragment of a request."""
    if not messages:
        raise FieldError(field, InputError("no fragments to score"))
    if len(messages) > defaults.MAX_FRAGMENTS_PER_REQUEST:
        raise FieldError(
            field,
            LimitError(
                f"{len(messages)} fragments exceeds the limit of {defaults.MAX_FRAGMENTS_PER_REQUEST} per request"
            ),
        )
    notes, origins = [], []
    total = 0.0
    for i, message in enumerate(messages):
        name = f"{field}[{i}]"
        origins.append(_field(f"{name}.origin_beats", number, message.origin_beats, "origin_beats", at_least=0))
        notes.append(fragment(message, name))
        total += span_beats(notes[-1])
        if total > defaults.MAX_BEATS_PER_REQUEST:
            raise FieldError(
                field,
                LimitError(
                    f"fragments reach {total:g} beats in all by fragment {i}, past the limit of "
                    f"{defaults.MAX_BEATS_PER_REQUEST:g} beats per request"
                ),
            )
    return notes, origins


def fragment(message: pb.Fragment, name: str) -> np.ndarray:
    """One fragment's notes, within the per-fragment limits."""
    content = message.WhichOneof("content")
    if content == "notes":
        listed = message.notes.notes
        if len(listed) > defaults.MAX_NOTES_PER_FRAGMENT:
            raise FieldError(
                f"{name}.notes",
                LimitError(f"{len(listed)} notes exceeds the limit of {defaults.MAX_NOTES_PER_FRAGMENT} per fragment"),
            )
        if not listed:
            raise FieldError(f"{name}.notes", InputError("empty fragment: no notes"))
        notes = _field(
            f"{name}.notes",
            notes_from_columns,
            [n.pitch for n in listed],
            [n.start for n in listed],
            [n.end for n in listed],
            [n.velocity or defaults.VELOCITY for n in listed],
            source=name,
        )
    elif content == "file":
        file = message.file
        notes = _field(f"{name}.file", read_notes_bytes, file.data, file.format, name=file.name or name)
        if notes.size > defaults.MAX_NOTES_PER_FRAGMENT:
            raise FieldError(
                f"{name}.file",
                LimitError(f"{notes.size} notes exceeds the limit of {defaults.MAX_NOTES_PER_FRAGMENT} per fragment"),
            )
    else:
        raise FieldError(name, InputError("empty fragment: set notes or file"))
    span = span_beats(notes)
    if span > defaults.MAX_BEATS_PER_FRAGMENT:
        raise FieldError(
            name,
            LimitError(
                f"notes reach beat {span:g}, past the limit of {defaults.MAX_BEATS_PER_FRAGMENT:g} beats per fragment"
            ),
        )
    return notes


def options(message: pb.ScoreOptions, scorer: Scorer, *, field: str = "options") -> dict[str, Any]:
    """Keyword arguments of :meth:`rollmatch.Scorer.score` from per-call options: the scorer's search space and
    thresholds with the ones a request sets, each checked under its field name."""
    _no_unknown_fields(message, field)
    space, thresholds = scorer.space, scorer.thresholds
    if message.HasField("transpose_range"):
        space = _field(f"{field}.transpose_range", space.overridden, transpose_range=message.transpose_range)
    if message.stretches:
        space = _field(f"{field}.stretches", space.overridden, stretches=tuple(message.stretches))
    for key, name in (("good_threshold", "good"), ("bad_threshold", "bad"), ("min_coverage", "min_coverage")):
        if message.HasField(key):
            thresholds = _field(f"{field}.{key}", thresholds.overridden, **{name: getattr(message, key)})
    out: dict[str, Any] = {"space": space, "thresholds": thresholds}
    if message.top_k:
        out["top_k"] = _field(
            f"{field}.top_k", whole_number, message.top_k, "top_k", at_least=0, at_most=defaults.MAX_TOP_K
        )
    return out


def match(value: Match | None) -> pb.Match | None:
    if value is None:
        return None
    return pb.Match(
        exemplar=value.exemplar,
        similarity=value.similarity,
        transpose=value.transpose,
        shift_beats=value.shift_beats,
        stretch=value.stretch,
        coverage=value.coverage,
        threshold=value.threshold,
    )


def result(verdict: Verdict, version: str) -> pb.Result:
    return pb.Result(
        verdict=_VERDICTS[verdict.outcome],
        score=verdict.score,
        good=match(verdict.good),
        bad=match(verdict.bad),
        top=[match(m) for m in verdict.top],
        library_version=version,
        nearest=match(verdict.nearest),
        min_coverage=verdict.min_coverage,
    )


def exemplar(value: Exemplar) -> pb.Exemplar:
    return pb.Exemplar(
        id=value.id,
        label=value.label.value,
        file=value.file,
        start_beat=value.start_beat,
        end_beat=value.end_beat,
        tracks=[str(t) for t in value.tracks or ()],
        threshold=value.threshold,
        tags=list(value.tags),
        description=value.description,
        provenance=value.provenance,
        mode="" if value.mode is None else value.mode.value,
    )


def library(value: Library) -> pb.GetLibraryResponse:
    labels = [e.label for e in value.exemplars]
    config = value.config
    return pb.GetLibraryResponse(
        name=config.name,
        version=value.version,
        good_count=labels.count(Label.GOOD),
        bad_count=labels.count(Label.BAD),
        thresholds=thresholds(value),
        steps_per_beat=config.steps_per_beat,
        velocity=config.velocity,
        default_transpose_range=defaults.TRANSPOSE_RANGE,
        default_stretches=list(defaults.STRETCHES),
        mode=config.mode.value,
    )


def thresholds(value: Library) -> pb.Thresholds:
    config = value.config
    return pb.Thresholds(good=config.good_threshold, bad=config.bad_threshold, min_coverage=config.min_coverage)


def threshold_updates(request: pb.SetThresholdsRequest) -> dict[str, float | None]:
    """The keyword arguments of :meth:`rollmatch.Library.set_thresholds` from a request, each set one checked
    under its field name; unset ones are None (kept)."""
    return {
        key: _field(key, lambda v, k=key: getattr(Thresholds().overridden(**{k: v}), k), getattr(request, key))
        if request.HasField(key)
        else None
        for key in ("good", "bad", "min_coverage")
    }


def exemplar_spec(request: pb.AddExemplarRequest) -> ExemplarSpec:
    """The new exemplar's specification from a request. Its label and mode are checked under their field
    names; the rest is checked by :class:`~rollmatch.manifest.ExemplarSpec`, the error naming the value."""
    return ExemplarSpec(
        label=_field("label", check_label, request.label),
        start_beat=request.start_beat if request.HasField("start_beat") else None,
        end_beat=request.end_beat if request.HasField("end_beat") else None,
        tracks=tracks(request.tracks),
        threshold=request.threshold if request.HasField("threshold") else None,
        mode=mode(request.mode),
        tags=tuple(request.tags),
        description=request.description,
        provenance=request.provenance or None,
    )


def mode(value: str) -> Mode | None:
    """An exemplar's mode from a request: empty for the library's."""
    return _field("mode", check_mode, value) if value else None


def tracks(values: Sequence[str]) -> tuple[int | str, ...] | None:
    """Track selectors from strings: digits are indices, anything else a name."""
    return tuple(int(t) if t.isdigit() else t for t in values) or None
