"""The RollmatchService servicer: convert the request, make one library call, convert the answer back."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from rollmatch import defaults
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2_grpc as pb_grpc
from rollmatch.library import Library
from rollmatch.manifest import ExemplarSpec
from rollmatch.readers import FORMATS, SUFFIXES, suffix_for

from . import convert
from .batcher import Batcher
from .state import LibraryState
from .status import error_message, rich_status


class RollmatchServicer(pb_grpc.RollmatchServiceServicer):
    def __init__(self, state: LibraryState, batcher: Batcher) -> None:
        self.state = state
        self.batcher = batcher

    async def _score(self, fragments: Any, options: pb.ScoreOptions) -> tuple[list[pb.Result], str]:
        notes, origins = convert.fragments(fragments)
        scorer = self.state.scorer
        kwargs = convert.options(options, scorer)
        verdicts = await self.batcher.score(scorer, notes, origins, kwargs)
        version = scorer.library.version
        return [convert.result(v, version) for v in verdicts], version

    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        try:
            results, version = await self._score(request.fragments, request.options)
        except Exception as exc:  # noqa: BLE001  (rich_status maps every error to its gRPC status)
            await context.abort_with_status(rich_status(exc))
        return pb.ScoreResponse(results=results, library_version=version)

    async def ScoreStream(
        self, request_iterator: AsyncIterator[pb.ScoreStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ScoreStreamResponse]:
        answers: asyncio.Queue[pb.ScoreStreamResponse | None] = asyncio.Queue()
        slots = asyncio.Semaphore(defaults.MAX_IN_FLIGHT_PER_STREAM)
        in_flight: set[asyncio.Task[None]] = set()

        async def answer(request: pb.ScoreStreamRequest) -> None:
            try:
                results, version = await self._score(request.fragments, request.options)
                response = pb.ScoreStreamResponse(id=request.id, results=results, library_version=version)
            except Exception as exc:  # noqa: BLE001  (any error answers this request, not the stream)
                response = pb.ScoreStreamResponse(id=request.id, error=error_message(exc))
            finally:
                slots.release()
            await answers.put(response)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()  # at most MAX_IN_FLIGHT_PER_STREAM requests of one stream at once
                    task = asyncio.create_task(answer(request))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                while in_flight:
                    await asyncio.gather(*in_flight)
            finally:
                await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response
            await reader  # a failed read ends the call with its error
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()

    async def GetLibrary(
        self, request: pb.GetLibraryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLibraryResponse:
        return convert.library(self.state.library)

    async def ListExemplars(
        self, request: pb.ListExemplarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListExemplarsResponse:
        library = self.state.library
        return pb.ListExemplarsResponse(
            exemplars=[convert.exemplar(e) for e in library.exemplars], library_version=library.version
        )

    async def AddExemplar(
        self, request: pb.AddExemplarRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddExemplarResponse:
        try:
            spec = convert.exemplar_spec(request)  # checked before the library's lock is taken
            added = await self.state.change(lambda library: _add(library, request, spec))
        except Exception as exc:  # noqa: BLE001  (rich_status maps every error to its gRPC status)
            await context.abort_with_status(rich_status(exc))
        return pb.AddExemplarResponse(exemplar=convert.exemplar(added.exemplars[-1]), library_version=added.version)

    async def RemoveExemplar(
        self, request: pb.RemoveExemplarRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveExemplarResponse:
        try:
            library = await self.state.change(lambda library: library.remove(request.id))
        except Exception as exc:  # noqa: BLE001  (rich_status maps every error to its gRPC status)
            await context.abort_with_status(rich_status(exc))
        return pb.RemoveExemplarResponse(library_version=library.version)

    async def SetThresholds(
        self, request: pb.SetThresholdsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetThresholdsResponse:
        try:
            updates = convert.threshold_updates(request)
            library = await self.state.change(lambda library: library.set_thresholds(**updates))
        except Exception as exc:  # noqa: BLE001  (rich_status maps every error to its gRPC status)
            await context.abort_with_status(rich_status(exc))
        return pb.SetThresholdsResponse(thresholds=convert.thresholds(library), library_version=library.version)


def _add(library: Library, request: pb.AddExemplarRequest, spec: ExemplarSpec) -> Library:
    """Write the sent bytes to a temporary file named as the client named it, and add that file, so the new
    entry (file name, id, provenance) is the one ``rollmatch library add`` makes from the client's file."""
    file = request.file
    name = Path(file.name).name if "\0" not in file.name else ""
    if FORMATS.get(Path(name).suffix.lower()) != file.format:  # no name, or one that does not say the format
        stem = Path(name).stem or request.id or "exemplar"
        suffix = suffix_for(file.format, file.data) if file.format in SUFFIXES else f".{file.format or 'unknown'}"
        name = f"{stem}{suffix}"
    with tempfile.TemporaryDirectory(prefix="rollmatch-add-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(file.data)
        return library.add(path, spec, exemplar_id=request.id or None)
