"""Python clients of the rollmatch gRPC service, for generators: sync (:class:`Client`) and asyncio
(:class:`AsyncClient`), plus :class:`RemoteScorer`, which scores like a local :class:`~rollmatch.Scorer`.

It is the client side of the service wing (the server is ``server/``, installed as ``rollmatch.server``, and
the generated code ``rollmatch/_pb``): with them, the only module that imports grpc, so ``import rollmatch``
does not.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from . import defaults
from ._pb.rollmatch.v1 import rollmatch_pb2 as pb
from ._pb.rollmatch.v1 import rollmatch_pb2_grpc as pb_grpc
from .engine import SearchSpace, check_mode
from .errors import (
    AlreadyExistsError,
    InputError,
    LibraryError,
    LimitError,
    NotFoundError,
    RollmatchError,
    ServiceError,
)
from .readers import format_of
from .verdict import Match, Outcome, Thresholds, Verdict

_ERRORS: dict[grpc.StatusCode, type[RollmatchError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InputError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: LibraryError,
}
_OUTCOMES = {pb.VERDICT_GOOD: Outcome.GOOD, pb.VERDICT_VETOED: Outcome.VETOED, pb.VERDICT_UNMATCHED: Outcome.UNMATCHED}

Fragment = np.ndarray | tuple[bytes, str]  #: a note array (beats), or a file's bytes and format name


@dataclass(frozen=True)
class StreamResult:
    """The answer to one streamed request: its verdicts, or the error that stopped it."""

    id: str
    verdicts: list[Verdict]
    error: RollmatchError | None = None


def _error(code: grpc.StatusCode, message: str) -> RollmatchError:
    return _ERRORS.get(code, ServiceError)(message if code in _ERRORS else f"{code.name}: {message}")


def _rpc_error(exc: grpc.RpcError) -> RollmatchError:
    return _error(exc.code(), exc.details() or "")


#: The wire refuses end <= start, but files hold zero-length notes (grace notes, a note-on and note-off on one
#: tick), which render as one step. Sent with this duration instead, a note still renders as exactly that one
#: step at every resolution up to MAX_STEPS_PER_BEAT, because it spans less than half a step.
ZERO_LENGTH_ON_WIRE = 1 / (4 * defaults.MAX_STEPS_PER_BEAT)


def fragment_message(fragment: Fragment, origin_beats: float = 0.0) -> pb.Fragment:
    if isinstance(fragment, tuple):
        data, fmt = fragment
        return pb.Fragment(file=pb.FileData(data=data, format=fmt), origin_beats=origin_beats)
    notes = [
        pb.Note(
            pitch=int(n["pitch"]),
            start=float(n["start"]),
            end=max(float(n["end"]), float(n["start"]) + ZERO_LENGTH_ON_WIRE),
            velocity=int(n["velocity"]),
        )
        for n in fragment
    ]
    return pb.Fragment(notes=pb.NoteList(notes=notes), origin_beats=origin_beats)


def options_message(
    *, space: SearchSpace | None = None, thresholds: Thresholds | None = None, top_k: int = 0
) -> pb.ScoreOptions:
    """Per-call options: the stretches and transposition range of ``space`` (its grid, cell values and mode
    are the served library's) and ``thresholds``; None leaves the server's."""
    return pb.ScoreOptions(
        transpose_range=None if space is None else space.transpose_range,
        stretches=[] if space is None else list(space.stretches),
        good_threshold=None if thresholds is None else thresholds.good,
        bad_threshold=None if thresholds is None else thresholds.bad,
        min_coverage=None if thresholds is None else thresholds.min_coverage,
        top_k=top_k,
    )


def _match(message: pb.Match) -> Match:
    return Match(
        message.exemplar,
        message.similarity,
        message.transpose,
        message.shift_beats,
        message.stretch,
        message.coverage,
        message.threshold,
    )


def verdict_from_message(result: pb.Result) -> Verdict:
    return Verdict(
        _OUTCOMES[result.verdict],
        result.score,
        _match(result.good) if result.HasField("good") else None,
        _match(result.bad) if result.HasField("bad") else None,
        result.min_coverage,
        tuple(_match(m) for m in result.top),
        _match(result.nearest) if result.HasField("nearest") else None,
    )


def _open_channel(channels: Any, target: str, tls_ca: str | os.PathLike[str] | None) -> Any:
    """A channel from ``channels`` (grpc or grpc.aio), over TLS when ``tls_ca`` names a PEM file to trust."""
    options = [("grpc.max_receive_message_length", defaults.MAX_MESSAGE_BYTES)]
    if not tls_ca:
        return channels.insecure_channel(target, options)
    try:
        trusted = Path(tls_ca).read_bytes()
    except OSError as exc:
        raise InputError(f"{tls_ca}: cannot read: {exc.strerror or exc}") from None
    return channels.secure_channel(target, grpc.ssl_channel_credentials(trusted), options)


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _requests(
    fragments: Sequence[Fragment], origins: Sequence[float] | None, options: pb.ScoreOptions
) -> Iterator[pb.ScoreRequest]:
    """Requests of at most MAX_FRAGMENTS_PER_REQUEST fragments each."""
    origins = origins if origins is not None else [0.0] * len(fragments)
    step = defaults.MAX_FRAGMENTS_PER_REQUEST
    for i in range(0, len(fragments), step):
        messages = [fragment_message(f, o) for f, o in zip(fragments[i : i + step], origins[i : i + step], strict=True)]
        yield pb.ScoreRequest(fragments=messages, options=options)


def _add_request(
    path: str | os.PathLike[str],
    *,
    label: str,
    exemplar_id: str | None = None,
    start_beat: float | None = None,
    end_beat: float | None = None,
    tracks: Sequence[int | str] | None = None,
    threshold: float | None = None,
    mode: str | None = None,
    tags: Sequence[str] = (),
    description: str = "",
    provenance: str = "",
) -> pb.AddExemplarRequest:
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from None
    return pb.AddExemplarRequest(
        file=pb.FileData(data=data, format=format_of(file), name=file.name),
        label=label,
        id=exemplar_id or "",
        start_beat=start_beat,
        end_beat=end_beat,
        tracks=[str(t) for t in tracks or ()],
        threshold=threshold,
        mode=mode or "",
        tags=list(tags),
        description=description,
        provenance=provenance,
    )


class _Connection:
    """A channel and stub to ``target`` (``host:port``); ``token`` is the curator token for curation calls,
    ``tls_ca`` a PEM file to trust for TLS, ``timeout`` a deadline in seconds for each call."""

    _channels: Any = grpc  # grpc or grpc.aio

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._channel = _open_channel(self._channels, target, tls_ca)
        self._stub = pb_grpc.RollmatchServiceStub(self._channel)
        self._metadata = _metadata(token)
        self.timeout = timeout


class Client(_Connection):
    """A blocking client of the rollmatch service."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _rpc_error(exc) from None

    def score(
        self, fragments: Sequence[Fragment], *, origin_beats: Sequence[float] | None = None, **options: Any
    ) -> list[Verdict]:
        """Verdicts for ``fragments``; ``options`` (space, thresholds, top_k) as for :func:`options_message`."""
        message = options_message(**options)
        return [
            verdict_from_message(r)
            for request in _requests(fragments, origin_beats, message)
            for r in self._call(self._stub.Score, request).results
        ]

    def score_stream(
        self,
        batches: Iterable[Sequence[Fragment]],
        *,
        max_in_flight: int = defaults.MAX_IN_FLIGHT_PER_STREAM,
        **options: Any,
    ) -> Iterator[StreamResult]:
        """Stream ``batches`` of fragments with up to ``max_in_flight`` requests awaiting answers, yielding each
        answer as it arrives; request ids are the batches' positions, as strings."""
        message = options_message(**options)
        slots = threading.Semaphore(max_in_flight)

        def requests() -> Iterator[pb.ScoreStreamRequest]:
            for i, batch in enumerate(batches):
                slots.acquire()
                yield pb.ScoreStreamRequest(id=str(i), fragments=[fragment_message(f) for f in batch], options=message)

        try:
            for response in self._stub.ScoreStream(requests(), timeout=self.timeout, metadata=self._metadata):
                slots.release()
                yield _stream_result(response)
        except grpc.RpcError as exc:
            raise _rpc_error(exc) from None

    def library(self) -> pb.GetLibraryResponse:
        return self._call(self._stub.GetLibrary, pb.GetLibraryRequest())

    def list_exemplars(self) -> pb.ListExemplarsResponse:
        return self._call(self._stub.ListExemplars, pb.ListExemplarsRequest())

    def add_exemplar(self, path: str | os.PathLike[str], **fields: Any) -> pb.AddExemplarResponse:
        """Add a file as an exemplar; ``fields`` as for :meth:`rollmatch.Library.add`."""
        return self._call(self._stub.AddExemplar, _add_request(path, **fields))

    def remove_exemplar(self, exemplar_id: str) -> pb.RemoveExemplarResponse:
        return self._call(self._stub.RemoveExemplar, pb.RemoveExemplarRequest(id=exemplar_id))

    def set_thresholds(
        self, *, good: float | None = None, bad: float | None = None, min_coverage: float | None = None
    ) -> pb.SetThresholdsResponse:
        request = pb.SetThresholdsRequest(good=good, bad=bad, min_coverage=min_coverage)
        return self._call(self._stub.SetThresholds, request)


def _stream_result(response: pb.ScoreStreamResponse) -> StreamResult:
    if response.HasField("error"):
        code = next((c for c in grpc.StatusCode if c.value[0] == response.error.code), grpc.StatusCode.UNKNOWN)
        return StreamResult(response.id, [], _error(code, response.error.message))
    return StreamResult(response.id, [verdict_from_message(r) for r in response.results])


class AsyncClient(_Connection):
    """The asyncio twin of :class:`Client`."""

    _channels = grpc.aio

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _rpc_error(exc) from None

    async def score(
        self, fragments: Sequence[Fragment], *, origin_beats: Sequence[float] | None = None, **options: Any
    ) -> list[Verdict]:
        message = options_message(**options)
        out: list[Verdict] = []
        for request in _requests(fragments, origin_beats, message):
            out += [verdict_from_message(r) for r in (await self._call(self._stub.Score, request)).results]
        return out

    async def score_stream(
        self,
        batches: Iterable[Sequence[Fragment]] | AsyncIterable[Sequence[Fragment]],
        *,
        max_in_flight: int = defaults.MAX_IN_FLIGHT_PER_STREAM,
        **options: Any,
    ) -> AsyncIterator[StreamResult]:
        """As :meth:`Client.score_stream`, for asyncio."""
        message = options_message(**options)
        slots = asyncio.Semaphore(max_in_flight)
        counter = itertools.count()

        async def requests() -> AsyncIterator[pb.ScoreStreamRequest]:
            source = batches if hasattr(batches, "__aiter__") else _aiter(batches)
            async for batch in source:
                await slots.acquire()
                yield pb.ScoreStreamRequest(
                    id=str(next(counter)), fragments=[fragment_message(f) for f in batch], options=message
                )

        call = self._stub.ScoreStream(requests(), timeout=self.timeout, metadata=self._metadata)
        try:
            async for response in call:
                slots.release()
                yield _stream_result(response)
        except grpc.RpcError as exc:
            raise _rpc_error(exc) from None

    async def library(self) -> pb.GetLibraryResponse:
        return await self._call(self._stub.GetLibrary, pb.GetLibraryRequest())

    async def list_exemplars(self) -> pb.ListExemplarsResponse:
        return await self._call(self._stub.ListExemplars, pb.ListExemplarsRequest())

    async def add_exemplar(self, path: str | os.PathLike[str], **fields: Any) -> pb.AddExemplarResponse:
        return await self._call(self._stub.AddExemplar, _add_request(path, **fields))

    async def remove_exemplar(self, exemplar_id: str) -> pb.RemoveExemplarResponse:
        return await self._call(self._stub.RemoveExemplar, pb.RemoveExemplarRequest(id=exemplar_id))

    async def set_thresholds(
        self, *, good: float | None = None, bad: float | None = None, min_coverage: float | None = None
    ) -> pb.SetThresholdsResponse:
        request = pb.SetThresholdsRequest(good=good, bad=bad, min_coverage=min_coverage)
        return await self._call(self._stub.SetThresholds, request)


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class RemoteScorer:
    """Scores through a running server with the interface of a local :class:`~rollmatch.Scorer` (the
    :class:`~rollmatch.scoring.Critic` protocol), so that :func:`rollmatch.score_files` and a phrase search
    give the same results either way. Its :attr:`space` and :attr:`thresholds` are the served library's when it
    was opened; a call that names none is judged by those the server has then."""

    def __init__(self, client: Client, *, max_in_flight: int = defaults.SEARCH_IN_FLIGHT) -> None:
        self.client = client
        self.max_in_flight = max_in_flight
        self.backend = "remote"
        self.engine = "server's engine"  # "scored with the server's engine"
        served = client.library()
        self.library_name, self.library_version = served.name, served.version
        #: the served library's; only the stretches and the transposition range of a space travel to the server
        self.space = SearchSpace(
            stretches=tuple(served.default_stretches),
            transpose_range=served.default_transpose_range,
            steps_per_beat=served.steps_per_beat,
            velocity=served.velocity,
            mode=check_mode(served.mode),
        )
        self.thresholds = Thresholds(served.thresholds.good, served.thresholds.bad, served.thresholds.min_coverage)

    def score(
        self,
        fragments: Sequence[np.ndarray],
        *,
        space: SearchSpace | None = None,
        thresholds: Thresholds | None = None,
        origin_beats: Sequence[float] | None = None,
        top_k: int = 0,
    ) -> list[Verdict]:
        return self.client.score(fragments, origin_beats=origin_beats, space=space, thresholds=thresholds, top_k=top_k)

    def score_batches(
        self, batches: Sequence[Sequence[np.ndarray]], *, thresholds: Thresholds | None = None
    ) -> list[list[Verdict]]:
        """Verdicts for each batch of fragments, in order: one streamed request per batch, up to
        ``max_in_flight`` awaiting answers at once."""
        out: list[list[Verdict]] = [[] for _ in batches]
        stream = self.client.score_stream(batches, max_in_flight=self.max_in_flight, thresholds=thresholds)
        for answer in stream:
            if answer.error is not None:
                raise answer.error
            out[int(answer.id)] = answer.verdicts
        return out
