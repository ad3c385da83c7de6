"""The gRPC service, against real servers on 127.0.0.1 with ephemeral ports."""

import asyncio
import functools
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from rollmatch.server import convert
from rollmatch.server.app import ServerConfig, start

from rollmatch import Library, Outcome, Scorer, SearchSpace, defaults, read_notes, select_beats, windows
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2_grpc as pb_grpc
from rollmatch.cli import main
from rollmatch.client import AsyncClient, Client, RemoteScorer, fragment_message
from rollmatch.errors import AlreadyExistsError, InputError, LimitError, NotFoundError, ParameterError, ServiceError
from rollmatch.manifest import ExemplarSpec
from rollmatch.storage import atomic_write

from .conftest import REPO, chorale_path

TOKEN = "s3cret-curator"


class LoopThread:
    """An asyncio loop on a thread of its own, for an in-process server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def copy_library(destination: Path) -> Path:
    shutil.copytree(REPO / "exemplars", destination, ignore=shutil.ignore_patterns(".rollmatch.lock"))
    return destination


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    library = copy_library(tmp_path_factory.mktemp("served") / "lib")
    loop = LoopThread()
    running = loop.run(start(ServerConfig(library=library, port=0, curator_token=TOKEN, backend="cpu")))
    yield running
    loop.run(running.stop(0))
    loop.close()


@pytest.fixture(scope="module")
def target(served):
    return f"127.0.0.1:{served.port}"


@pytest.fixture(scope="module")
def stub(target):
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.RollmatchServiceStub(channel)


@pytest.fixture(scope="module")
def local(served):
    return Scorer(Library.open(served.state.library.path), backend="cpu")


def assert_same(remote, local_verdicts):
    assert len(remote) == len(local_verdicts)
    for r, v in zip(remote, local_verdicts, strict=True):
        assert (
            r.outcome == v.outcome and r.score == pytest.approx(v.score, abs=1e-6) and r.min_coverage == v.min_coverage
        )
        for a, b in ((r.good, v.good), (r.bad, v.bad)):
            assert (a is None) == (b is None)
            if a is not None:
                assert (a.exemplar, a.transpose, a.shift_beats, a.stretch, a.threshold) == (
                    b.exemplar,
                    b.transpose,
                    b.shift_beats,
                    b.stretch,
                    b.threshold,
                )
                assert a.similarity == pytest.approx(b.similarity, abs=1e-6) and a.coverage == pytest.approx(
                    b.coverage, abs=1e-9
                )


def healthy(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="rollmatch.v1.RollmatchService"), timeout=10
        )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@functools.cache
def bwv269() -> np.ndarray:
    """All of BWV 269, parsed once per session (read-only)."""
    notes = read_notes(chorale_path("bwv269"))
    notes.setflags(write=False)
    return notes


def chorale_windows() -> tuple[list[np.ndarray], list[float]]:
    cut = windows(bwv269(), window_beats=8, hop_beats=4)
    return [w for _, _, w in cut], [s for s, _, _ in cut]


# --- scoring ---------------------------------------------------------------------------------------------


def test_unary_scoring_equals_local_scoring(target, local):
    fragments, origins = chorale_windows()
    with Client(target, timeout=60) as client:
        remote = client.score(fragments, origin_beats=origins)
        files = [
            ((REPO / "examples" / name).read_bytes(), "midi") for name in ("bwv18.5-lz-opening.mid", "planing.mid")
        ]
        from_bytes = client.score(files)
    assert_same(remote, local.score(fragments, origin_beats=origins))
    examples = [read_notes(REPO / "examples" / name) for name in ("bwv18.5-lz-opening.mid", "planing.mid")]
    assert_same(from_bytes, local.score(examples))
    assert [v.outcome.value for v in from_bytes] == ["GOOD", "VETOED"]


def test_zero_length_notes_score_as_they_do_locally(target, local):
    # A grace-note-like zero-length note on each beat of a real phrase, as MIDI files and scores hold them.
    phrase = read_notes(REPO / "examples" / "bwv18.5-lz-opening.mid")
    blips = phrase[phrase["start"] == np.floor(phrase["start"])].copy()
    blips["pitch"] += 1
    blips["end"] = blips["start"]
    fragment = np.sort(np.concatenate([phrase, blips]), order=["start", "pitch"])
    with Client(target, timeout=60) as client:
        remote = client.score([fragment])
    assert_same(remote, local.score([fragment]))


def test_options_and_top_matches_travel(target, local):
    notes = read_notes(REPO / "examples" / "bwv269-opening.mid")
    space = SearchSpace(transpose_range=3, stretches=(1.0, 2.0))
    options = {"space": space, "thresholds": local.thresholds.overridden(good=0.5), "top_k": 5}
    relaxed = local.thresholds.overridden(min_coverage=0.4)
    with Client(target, timeout=60) as client:
        (remote,) = client.score([notes], **options)
        # Coverage decides: the two-phrase example reaches its exemplar over half of itself.
        two_phrases = read_notes(REPO / "examples" / "bwv18.5-lz-two-phrases.mid")
        covered = [client.score([two_phrases], thresholds=t)[0] for t in (None, relaxed)]
    (expected,) = local.score([notes], **options)
    assert_same([remote], [expected])
    assert [v.outcome for v in covered] == [Outcome.UNMATCHED, Outcome.GOOD]
    assert [v.min_coverage for v in covered] == [local.thresholds.min_coverage, 0.4]
    assert_same(covered, [local.score([two_phrases])[0], local.score([two_phrases], thresholds=relaxed)[0]])
    assert len(remote.top) == 5 and [m.exemplar for m in remote.top] == [m.exemplar for m in expected.top]
    assert remote.top[0].similarity >= remote.top[-1].similarity


def test_streaming_equals_local_scoring_with_many_in_flight(target, local):
    fragments, _ = chorale_windows()
    batches = [fragments[i : i + 3] for i in range(0, len(fragments), 3)]
    with Client(target, timeout=120) as client:
        answers = {int(r.id): r for r in client.score_stream(batches, max_in_flight=8)}
    assert sorted(answers) == list(range(len(batches)))
    for i, batch in enumerate(batches):
        assert answers[i].error is None
        assert_same(answers[i].verdicts, local.score(batch))


def test_async_client_streams_too(target, local):
    fragments, _ = chorale_windows()

    async def run():
        async with AsyncClient(target, timeout=60) as client:
            unary = await client.score(fragments[:4])
            streamed = [r async for r in client.score_stream([fragments[:2], fragments[2:4]])]
            info = await client.library()
        return unary, streamed, info

    unary, streamed, info = asyncio.run(run())
    assert_same(unary, local.score(fragments[:4]))
    by_id = {r.id: r.verdicts for r in streamed}
    assert_same(by_id["0"] + by_id["1"], local.score(fragments[:4]))
    assert info.good_count == 24 and info.bad_count == 9


def test_cli_scores_through_the_server_with_the_same_output(target, served, capsys):
    files = [str(p) for p in sorted((REPO / "examples").glob("*.mid"))]
    assert main(["score", "--json", "--library", str(served.state.library.path), *files]) == 0
    local_out = capsys.readouterr().out
    assert main(["score", "--json", "--server", target, *files]) == 0
    assert capsys.readouterr().out == local_out
    assert main(["score", "--server", target, "--library", "x", *files]) == 2


def test_cli_draws_a_timeline_through_the_server(target, served, tmp_path, capsys):
    config = Library.open(served.state.library.path).config
    with Client(target, timeout=60) as client:
        remote = RemoteScorer(client)
        assert remote.thresholds == config.thresholds and remote.library_name == config.name
        assert remote.space == config.space
    out_png = tmp_path / "timeline.png"
    assert (
        main(
            [
                "score",
                "--server",
                target,
                "--window",
                "4",
                "--png",
                str(out_png),
                str(REPO / "examples" / "planing.mid"),
            ]
        )
        == 0
    )
    assert "drew the window timeline" in capsys.readouterr().err and out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- bad input ---------------------------------------------------------------------------------------------


def _notes(*records) -> pb.Fragment:
    return pb.Fragment(notes=pb.NoteList(notes=[pb.Note(**r) for r in records]))


GOOD_NOTE = {"pitch": 60, "start": 0.0, "end": 1.0}
UNKNOWN_OPTION = pb.ScoreOptions()
UNKNOWN_OPTION.MergeFromString(bytes([0xA8, 0x06, 0x01]))  # field 101 = 1: an option this server does not know

BAD_REQUESTS = {
    "pitch": (
        pb.ScoreRequest(fragments=[_notes({"pitch": 130, "start": 0, "end": 1})]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].notes",
        "pitch must be within 0-127",
    ),
    "end<=start": (
        pb.ScoreRequest(fragments=[_notes({"pitch": 60, "start": 2, "end": 2})]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].notes",
        "end must be > start",
    ),
    "nan": (
        pb.ScoreRequest(fragments=[_notes({"pitch": 60, "start": math.nan, "end": 1})]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].notes",
        "finite",
    ),
    "empty fragment": (
        pb.ScoreRequest(fragments=[pb.Fragment()]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0]",
        "set notes or file",
    ),
    "no notes": (
        pb.ScoreRequest(fragments=[_notes()]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].notes",
        "no notes",
    ),
    "no fragments": (pb.ScoreRequest(), grpc.StatusCode.INVALID_ARGUMENT, "fragments", "no fragments"),
    "corrupt midi": (
        pb.ScoreRequest(fragments=[pb.Fragment(file=pb.FileData(data=b"MThd\x00\x00\x00", format="midi"))]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].file",
        "not a readable MIDI file",
    ),
    "unknown format": (
        pb.ScoreRequest(fragments=[pb.Fragment(file=pb.FileData(data=b"RIFF", format="wav"))]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].file",
        "unknown format 'wav'",
    ),
    "unknown option": (
        pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)], options=UNKNOWN_OPTION),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options",
        "unknown option field 101",
    ),
    "bad stretch": (
        pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)], options=pb.ScoreOptions(stretches=[0.0])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.stretches",
        "stretch=0 must be > 0",
    ),
    "bad threshold": (
        pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)], options=pb.ScoreOptions(good_threshold=3)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.good_threshold",
        "good_threshold=3",
    ),
    "bad coverage": (
        pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)], options=pb.ScoreOptions(min_coverage=1.5)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.min_coverage",
        "min_coverage=1.5 must be within [0, 1]",
    ),
    "negative origin": (
        pb.ScoreRequest(fragments=[pb.Fragment(notes=pb.NoteList(notes=[pb.Note(**GOOD_NOTE)]), origin_beats=-1)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "fragments[0].origin_beats",
        "origin_beats=-1",
    ),
    "too many fragments": (
        pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)] * (defaults.MAX_FRAGMENTS_PER_REQUEST + 1)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "fragments",
        f"limit of {defaults.MAX_FRAGMENTS_PER_REQUEST} per request",
    ),
    "too many beats": (
        pb.ScoreRequest(fragments=[_notes({"pitch": 60, "start": 0, "end": 5000})]),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "fragments[0]",
        "beats per fragment",
    ),
    "too many beats in all": (
        pb.ScoreRequest(fragments=[_notes({"pitch": 60, "start": 0, "end": 1000})] * 40),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "fragments",
        f"limit of {defaults.MAX_BEATS_PER_REQUEST:g} beats per request",
    ),
    "too many notes": (
        pb.ScoreRequest(
            fragments=[
                _notes(*[{"pitch": 60, "start": i, "end": i + 1} for i in range(defaults.MAX_NOTES_PER_FRAGMENT + 1)])
            ]
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "fragments[0].notes",
        f"limit of {defaults.MAX_NOTES_PER_FRAGMENT} per fragment",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_its_status_and_a_field_violation(stub, target, case):
    request, code, field, message = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(request, timeout=30)
    error = caught.value
    assert error.code() == code and message in error.details()
    status = rpc_status.from_call(error)
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == field
    assert healthy(target)


def test_oversized_message_is_refused_by_size(stub, target):
    huge = pb.ScoreRequest(
        fragments=[pb.Fragment(file=pb.FileData(data=b"\0" * (defaults.MAX_MESSAGE_BYTES + 1), format="midi"))]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(huge, timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert healthy(target)


def test_deadline_is_honoured_and_the_server_goes_on(stub, target, served, monkeypatch):
    # The engine is held until the caller has had its answer, so the deadline passes first however fast the
    # machine is; then the engine goes on and the server serves the next call.
    release = threading.Event()
    score = served.state.scorer.score

    def held(*args, **kwargs):
        release.wait(60)
        return score(*args, **kwargs)

    monkeypatch.setattr(served.state.scorer, "score", held)
    fragments, _ = chorale_windows()
    call = stub.Score.future(pb.ScoreRequest(fragments=[fragment_message(f) for f in fragments]), timeout=1)
    try:
        error = call.exception(timeout=60)
    finally:
        release.set()
    assert error is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    monkeypatch.undo()
    assert healthy(target)
    assert len(stub.Score(pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)]), timeout=30).results) == 1


def test_a_bad_streamed_request_is_answered_in_band_and_the_stream_goes_on(stub):
    requests = [
        pb.ScoreStreamRequest(id="ok-1", fragments=[_notes(GOOD_NOTE)]),
        pb.ScoreStreamRequest(id="bad", fragments=[_notes({"pitch": 200, "start": 0, "end": 1})]),
        pb.ScoreStreamRequest(id="ok-2", fragments=[_notes(GOOD_NOTE, {"pitch": 64, "start": 1, "end": 2})]),
    ]
    answers = {r.id: r for r in stub.ScoreStream(iter(requests), timeout=60)}
    assert set(answers) == {"ok-1", "bad", "ok-2"}
    assert answers["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert (
        answers["bad"].error.field == "fragments[0].notes"
        and "pitch must be within 0-127" in answers["bad"].error.message
    )
    assert len(answers["ok-2"].results) == 1 and not answers["ok-2"].HasField("error")


def test_client_maps_status_codes_to_rollmatch_errors(target):
    with Client(target, timeout=30) as client:
        with pytest.raises(InputError, match="pitch must be within 0-127"):
            client.score(
                [
                    np.array(
                        [(130, 0.0, 1.0, 90)],
                        dtype=[("pitch", "i2"), ("start", "f8"), ("end", "f8"), ("velocity", "u1")],
                    )
                ]
            )
        with pytest.raises(LimitError, match="per fragment"):
            client.score([(json.dumps([{"pitch": 60, "start": 0, "end": 4000}]).encode(), "json")])
    with Client("127.0.0.1:1", timeout=2) as nowhere, pytest.raises(ServiceError, match="UNAVAILABLE"):
        nowhere.score([select_beats(read_notes(REPO / "examples" / "planing.mid"), 0, 1)])


def test_calls_past_the_concurrency_limit_are_refused_not_queued(tmp_path):
    loop = LoopThread()
    running = loop.run(start(ServerConfig(library=REPO / "exemplars", port=0, max_concurrent_rpcs=2, backend="cpu")))
    release = threading.Event()

    def held_open():
        yield pb.ScoreStreamRequest(id="first", fragments=[_notes(GOOD_NOTE)])
        release.wait(60)

    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RollmatchServiceStub(channel)
            streams = [stub.ScoreStream(held_open(), timeout=60) for _ in range(2)]
            # An answer on each stream: both calls are running on the server, holding its two slots.
            assert [next(s).id for s in streams] == ["first", "first"]
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetLibrary(pb.GetLibraryRequest(), timeout=10)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            assert [list(s) for s in streams] == [[], []]
            assert stub.GetLibrary(pb.GetLibraryRequest(), timeout=10).good_count == 24  # and it serves again
    finally:
        release.set()
        loop.run(running.stop(0))
        loop.close()


def test_a_port_in_use_is_refused_not_shared(served):
    loop = LoopThread()
    try:
        with pytest.raises(ParameterError, match=f"cannot listen on 127.0.0.1:{served.port}"):
            loop.run(start(ServerConfig(library=REPO / "exemplars", port=served.port, backend="cpu")))
    finally:
        loop.close()


def test_internal_errors_never_leak(stub, served, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/rollmatch/engine.py line 42")

    monkeypatch.setattr(served.state.scorer, "score", broken)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)]), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error; see the server log"
    monkeypatch.undo()
    assert len(stub.Score(pb.ScoreRequest(fragments=[_notes(GOOD_NOTE)]), timeout=30).results) == 1


# --- health, reflection ---------------------------------------------------------------------------------


def test_health_and_reflection_are_served(target):
    assert healthy(target)
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"rollmatch.v1.RollmatchService", "grpc.health.v1.Health"} <= services
        described = database.FindFileContainingSymbol("rollmatch.v1.RollmatchService")
        assert "ScoreStream" in [m.name for m in described.service[0].method]


# --- curation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "request_message", "field", "message"),
    [
        (
            "AddExemplar",
            pb.AddExemplarRequest(file=pb.FileData(data=b"[]", format="json", name="x.json"), label="bad", mode="copy"),
            "mode",
            "mode='copy' must be one of near-copy, contains",
        ),
        (
            "AddExemplar",
            pb.AddExemplarRequest(file=pb.FileData(data=b"[]", format="json", name="x.json"), label="ugly"),
            "label",
            "label='ugly' must be 'good' or 'bad'",
        ),
        (
            "SetThresholds",
            pb.SetThresholdsRequest(min_coverage=-1),
            "min_coverage",
            "min_coverage=-1 must be within [0, 1]",
        ),
        ("SetThresholds", pb.SetThresholdsRequest(good=2), "good", "good_threshold=2 must be in (0, 1]"),
    ],
)
def test_curation_errors_name_their_field(target, call, request_message, field, message):
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
        getattr(pb_grpc.RollmatchServiceStub(channel), call)(
            request_message, timeout=30, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details()
    detail = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(detail) and detail.field_violations[0].field == field


def test_curation_needs_the_token(target):
    with Client(target, timeout=30) as anonymous, pytest.raises(ServiceError, match="UNAUTHENTICATED"):
        anonymous.remove_exemplar("planing")
    with Client(target, timeout=30, token="wrong") as wrong, pytest.raises(ServiceError, match="PERMISSION_DENIED"):
        wrong.set_thresholds(good=0.9)
    with Client(target, timeout=30) as reader:
        assert reader.library().thresholds.good == pytest.approx(defaults.GOOD_THRESHOLD)  # reading stays open
    # the scheme's case does not matter (RFC 6750); the token's does
    with grpc.insecure_channel(target) as channel:
        remove = pb_grpc.RollmatchServiceStub(channel).RemoveExemplar
        missing = pb.RemoveExemplarRequest(id="no-such-exemplar")
        for sent, code in (
            (f"bearer {TOKEN}", grpc.StatusCode.NOT_FOUND),  # past the token check, to the library
            (f"BEARER {TOKEN}", grpc.StatusCode.NOT_FOUND),
            (f"bearer {TOKEN.upper()}", grpc.StatusCode.PERMISSION_DENIED),
            ("bearer", grpc.StatusCode.UNAUTHENTICATED),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                remove(missing, timeout=30, metadata=(("authorization", sent),))
            assert caught.value.code() == code, sent


def test_curation_changes_the_served_library(target, served, tmp_path):
    motif = tmp_path / "motif.json"
    motif.write_text(
        json.dumps(
            [
                {"pitch": 60, "start": 0, "end": 1},
                {"pitch": 61, "start": 1, "end": 2},
                {"pitch": 62, "start": 2, "end": 3},
            ]
        )
    )
    with Client(target, timeout=60, token=TOKEN) as client:
        before = client.library().version
        added = client.add_exemplar(motif, label="bad", exemplar_id="creep", tags=["test"])
        assert added.exemplar.id == "creep" and added.library_version != before
        (verdict,) = client.score([read_notes(motif)])
        assert verdict.outcome.value == "VETOED" and verdict.bad.exemplar == "creep"
        with pytest.raises(AlreadyExistsError, match="'creep' already exists"):
            client.add_exemplar(motif, label="bad", exemplar_id="creep")
        assert client.set_thresholds(bad=0.99).thresholds.bad == pytest.approx(0.99)
        client.set_thresholds(bad=defaults.BAD_THRESHOLD)
        with pytest.raises(InputError, match=r"^mode='copy' must be one of near-copy, contains"):
            client.add_exemplar(motif, label="bad", exemplar_id="creep2", mode="copy")
        with pytest.raises(InputError, match=r"^min_coverage=1.5 must be within \[0, 1\]"):
            client.set_thresholds(min_coverage=1.5)
        client.remove_exemplar("creep")
        with pytest.raises(NotFoundError, match="no exemplar with id 'creep'"):
            client.remove_exemplar("creep")
        assert "creep" not in [e.id for e in client.list_exemplars().exemplars]
    assert "creep" not in [e.id for e in Library.open(served.state.library.path).exemplars]


def test_concurrent_curation_from_several_clients_keeps_every_acknowledged_change(target, served, tmp_path):
    motif = tmp_path / "m.json"
    motif.write_text(json.dumps([{"pitch": 72, "start": 0, "end": 1}, {"pitch": 76, "start": 1, "end": 2}]))
    kept: set[str] = set()
    errors: list[Exception] = []

    def curator(w: int) -> None:
        try:
            with Client(target, timeout=60, token=TOKEN) as client:
                for i in range(5):
                    client.add_exemplar(motif, label="good", exemplar_id=f"cur{w}-{i}")
                for i in (0, 1):
                    client.remove_exemplar(f"cur{w}-{i}")
                kept.update(f"cur{w}-{i}" for i in (2, 3, 4))
        except Exception as exc:  # noqa: BLE001  (reported by the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=curator, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    ids = {e.id for e in Library.open(served.state.library.path).exemplars}
    assert {i for i in ids if i.startswith("cur")} == kept
    with Client(target, timeout=30) as client:
        assert {e.id for e in client.list_exemplars().exemplars} == ids


# --- a server process: SIGTERM, kill -9, TLS ----------------------------------------------------------------


def launch(library: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, defaults.CURATOR_TOKEN_ENV: TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rollmatch",
            "serve",
            "--library",
            str(library),
            "--port",
            "0",
            "--backend",
            "cpu",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on "), proc.stderr.read()
    return proc, line.split()[-1]


def test_sigterm_drains_a_live_stream(tmp_path):
    proc, target = launch(copy_library(tmp_path / "lib"), "--grace", "20")
    fragments, _ = chorale_windows()
    sent = threading.Event()
    proceed = threading.Event()

    def requests():
        yield pb.ScoreStreamRequest(id="before", fragments=[fragment_message(f) for f in fragments[:2]])
        sent.set()
        proceed.wait(30)
        yield pb.ScoreStreamRequest(id="after", fragments=[fragment_message(f) for f in fragments[2:4]])

    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RollmatchServiceStub(channel)
        health_stub = health_pb2_grpc.HealthStub(channel)
        watch = health_stub.Watch(health_pb2.HealthCheckRequest(), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        responses = stub.ScoreStream(requests(), timeout=60)
        first = next(responses)
        assert first.id == "before" and len(first.results) == 2
        assert sent.wait(60)
        proc.send_signal(signal.SIGTERM)
        # Draining starts when the watch hears NOT_SERVING. Health checks are still answered then, for the notice
        # period (defaults.SHUTDOWN_NOTICE_S) before the transport closes: the probe goes at once.
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        probe = health_stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert probe.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # or the server would wait the whole grace period for it
        # New calls are refused from then on, on the channel in use and on a new one.
        with pytest.raises(grpc.RpcError) as same:
            stub.GetLibrary(pb.GetLibraryRequest(), timeout=10)
        with grpc.insecure_channel(target) as fresh, pytest.raises(grpc.RpcError) as new:
            pb_grpc.RollmatchServiceStub(fresh).GetLibrary(pb.GetLibraryRequest(), timeout=10)
        assert same.value.code() == new.value.code() == grpc.StatusCode.UNAVAILABLE, (same.value, new.value)
        proceed.set()
        rest = list(responses)  # the stream in flight still gets its answer
    assert [r.id for r in rest] == ["after"] and len(rest[0].results) == 2
    assert proc.wait(30) == 0
    assert "shutting down" in proc.stderr.read()


def test_kill_9_loses_no_acknowledged_curation(tmp_path):
    library = copy_library(tmp_path / "lib")
    proc, target = launch(library)
    motif = tmp_path / "k.json"
    motif.write_text(json.dumps([{"pitch": 50, "start": 0, "end": 1}, {"pitch": 57, "start": 0, "end": 1}]))
    acknowledged = []
    with Client(target, timeout=60, token=TOKEN) as client:
        for i in range(6):
            client.add_exemplar(motif, label="bad", exemplar_id=f"k{i}")
            acknowledged.append(f"k{i}")
    proc.kill()
    proc.wait(10)
    assert set(acknowledged) <= {e.id for e in Library.open(library).exemplars}
    proc, target = launch(library)  # and a restarted server serves them
    try:
        with Client(target, timeout=30) as client:
            assert set(acknowledged) <= {e.id for e in client.list_exemplars().exemplars}
    finally:
        proc.terminate()
        proc.wait(30)


def test_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    loop = LoopThread()
    running = loop.run(
        start(ServerConfig(library=REPO / "exemplars", port=0, tls_cert=cert, tls_key=key, backend="cpu"))
    )
    try:
        with Client(f"localhost:{running.port}", tls_ca=cert, timeout=60) as client:
            (verdict,) = client.score([read_notes(REPO / "examples" / "planing.mid")])
            assert verdict.outcome.value == "VETOED"
        with Client(f"localhost:{running.port}", timeout=5) as plaintext, pytest.raises(ServiceError):
            plaintext.library()
    finally:
        loop.run(running.stop(0))
        loop.close()


# --- live reload and the CLI ---------------------------------------------------------------------------------


def small_library(directory: Path) -> Path:
    """One good and one bad shipped example: MIDI, so quick to load."""
    Library.init(directory, name="live").add(
        REPO / "examples" / "bwv18.5-lz-opening.mid", ExemplarSpec(label="good")
    ).add(REPO / "examples" / "planing.mid", ExemplarSpec(label="bad"))
    return directory


def creep(path: Path) -> Path:
    path.write_text(json.dumps([{"pitch": 60 + i, "start": i, "end": i + 1} for i in range(3)]))
    return path


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_curation_calls_make_the_library_the_cli_makes(tmp_path, capsys):

    by_cli, by_rpc = small_library(tmp_path / "cli"), small_library(tmp_path / "rpc")
    assert Library.open(by_cli).version == Library.open(by_rpc).version
    motif = creep(tmp_path / "creep.json")
    loop = LoopThread()
    running = loop.run(
        start(ServerConfig(library=by_rpc, port=0, curator_token=TOKEN, backend="cpu", library_poll_s=0))
    )
    cli_versions: list[str] = []

    def cli(*argv: str) -> None:
        assert main(list(argv)) == 0
        cli_versions.append(capsys.readouterr().out.split()[-1])

    fragments, origins = chorale_windows()
    fragments += [read_notes(chorale_path("bwv269"), tracks=["Bass"], end_beat=8), read_notes(motif)]
    origins += [0.0, 0.0]
    try:
        with Client(f"127.0.0.1:{running.port}", timeout=60, token=TOKEN) as client:
            cli(
                "library",
                "add",
                str(by_cli),
                str(chorale_path("bwv269")),
                "--label",
                "bad",
                "--id",
                "bwv269-bass",
                "--start",
                "0",
                "--end",
                "8",
                "--track",
                "Bass",
                "--threshold",
                "0.9",
                "--tag",
                "bach",
                "--tag",
                "bass",
                "--description",
                "the bass",
            )
            cli("library", "add", str(by_cli), str(motif), "--label", "bad", "--mode", "contains")
            cli(
                "library",
                "add",
                str(by_cli),
                str(REPO / "examples" / "bwv269-opening.mid"),
                "--label",
                "good",
                "--track",
                "1",
                "--provenance",
                "the shipped example",
            )
            cli("library", "remove", str(by_cli), "planing")
            cli("library", "thresholds", str(by_cli), "--good", "0.8", "--bad", "0.75")
            cli("library", "thresholds", str(by_cli), "--bad", "0.7", "--min-coverage", "0.5")
            rpc_versions = [
                client.add_exemplar(
                    chorale_path("bwv269"),
                    label="bad",
                    exemplar_id="bwv269-bass",
                    start_beat=0,
                    end_beat=8,
                    tracks=["Bass"],
                    threshold=0.9,
                    tags=["bach", "bass"],
                    description="the bass",
                ).library_version,
                client.add_exemplar(motif, label="bad", mode="contains").library_version,
                client.add_exemplar(
                    REPO / "examples" / "bwv269-opening.mid", label="good", tracks=[1], provenance="the shipped example"
                ).library_version,
                client.remove_exemplar("planing").library_version,
                client.set_thresholds(good=0.8, bad=0.75).library_version,
                client.set_thresholds(bad=0.7, min_coverage=0.5).library_version,
            ]
            listed, info = client.list_exemplars(), client.library()
            remote = client.score(fragments, origin_beats=origins)
    finally:
        loop.run(running.stop(0))
        loop.close()
    assert rpc_versions == cli_versions
    assert (by_rpc / "rollmatch.toml").read_bytes() == (by_cli / "rollmatch.toml").read_bytes()
    assert sorted(p.name for p in (by_rpc / "files").iterdir()) == sorted(p.name for p in (by_cli / "files").iterdir())
    made = Library.open(by_cli)
    assert [e.id for e in made.exemplars] == ["bwv18.5-lz-opening", "bwv269-bass", "creep", "bwv269-opening"]
    assert (
        list(listed.exemplars) == [convert.exemplar(e) for e in made.exemplars]
        and listed.library_version == made.version
    )
    assert (info.version, info.thresholds.good, info.thresholds.bad, info.thresholds.min_coverage) == (
        made.version,
        0.8,
        0.7,
        0.5,
    )
    assert info.mode == "near-copy" and [e.mode for e in listed.exemplars] == ["", "", "contains", ""]
    expected = Scorer(made, backend="cpu").score(fragments, origin_beats=origins)
    assert_same(remote, expected)
    assert [v.bad.exemplar for v in expected[-2:]] == ["bwv269-bass", "creep"]


def test_the_cli_changes_a_served_library_live_and_no_call_fails(tmp_path, capsys):
    library = small_library(tmp_path / "lib")
    motif = creep(tmp_path / "creep.json")
    probe = fragment_message(read_notes(motif))
    proc, target = launch(library, "--library-poll", "0.02")
    answers: dict[
        str, list[tuple[str, str, str]]
    ] = {}  # caller -> (response version, result version, best bad), in order
    sent: dict[str, int] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def unary(name: str, stub) -> None:
        while not stop.is_set():
            sent[name] += 1
            reply = stub.Score(pb.ScoreRequest(fragments=[probe]), timeout=60)
            answers[name].append(
                (reply.library_version, reply.results[0].library_version, reply.results[0].bad.exemplar)
            )

    def streamed(name: str, stub) -> None:
        slots = threading.Semaphore(2)

        def requests():
            while not stop.is_set():
                if slots.acquire(timeout=0.05):
                    sent[name] += 1
                    yield pb.ScoreStreamRequest(id=str(sent[name]), fragments=[probe])

        for reply in stub.ScoreStream(requests(), timeout=120):
            assert not reply.HasField("error"), reply.error
            answers[name].append(
                (reply.library_version, reply.results[0].library_version, reply.results[0].bad.exemplar)
            )
            slots.release()

    def caller(work, name: str, stub) -> None:
        try:
            work(name, stub)
        except BaseException as exc:  # noqa: BLE001  (reported by the test's thread)
            errors.append(exc)

    try:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.RollmatchServiceStub(channel)
            old = stub.GetLibrary(pb.GetLibraryRequest(), timeout=30).version
            names = ["unary-0", "unary-1", "stream-0", "stream-1"]
            for name in names:
                answers[name], sent[name] = [], 0
            threads = [
                threading.Thread(target=caller, args=(unary if n.startswith("unary") else streamed, n, stub))
                for n in names
            ]
            for t in threads:
                t.start()
            wait_for(lambda: all(len(answers[n]) >= 5 for n in names) or errors, "every caller's first answers")
            assert main(["library", "add", str(library), str(motif), "--label", "bad"]) == 0
            new = capsys.readouterr().out.split()[-1]
            wait_for(
                lambda: all([a[0] for a in answers[n][-5:]] == [new] * 5 for n in names) or errors,
                "5 answers of the new version each",
            )
            stop.set()
            for t in threads:
                t.join(60)
            assert stub.GetLibrary(pb.GetLibraryRequest(), timeout=30).bad_count == 2
    finally:
        stop.set()
        proc.terminate()
        log = proc.communicate(timeout=30)[1]
    assert not errors and new != old
    for name in names:
        assert len(answers[name]) == sent[name]  # every call answered
        versions = [version for version, _, _ in answers[name]]
        switch = versions.index(new)
        assert switch > 0 and versions == [old] * switch + [new] * (len(versions) - switch)  # forward only
        for version, result_version, bad in answers[name]:
            assert result_version == version and (bad == "creep") == (
                version == new
            )  # scored with the version it names
    assert f"library changed on disk: serving version {new} (3 exemplars), was {old}" in log


def test_a_broken_change_on_disk_keeps_the_served_version(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="rollmatch.server")
    library = small_library(tmp_path / "lib")
    loop = LoopThread()
    running = loop.run(start(ServerConfig(library=library, port=0, backend="cpu", library_poll_s=0.02)))
    request = pb.ScoreRequest(fragments=[fragment_message(read_notes(REPO / "examples" / "planing.mid"))])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RollmatchServiceStub(channel)
            before = stub.Score(request, timeout=60)
            # By hand: an entry whose file cannot be read, saved the way editors save (a new file renamed over).
            (library / "files" / "broken.mid").write_bytes(b"MThd garbage")
            manifest = library / "rollmatch.toml"
            atomic_write(
                manifest,
                manifest.read_bytes() + b'\n[[exemplar]]\nid = "broken"\nlabel = "good"\nfile = "files/broken.mid"\n',
            )
            wait_for(lambda: running.state.failure is not None, "the reload to fail")
            assert "exemplar 'broken'" in running.state.failure and "not a readable MIDI file" in running.state.failure
            assert stub.Score(request, timeout=60) == before
            assert stub.GetLibrary(pb.GetLibraryRequest(), timeout=30).version == before.library_version
            atomic_write(
                library / "files" / "broken.mid", (REPO / "examples" / "bwv269-opening.mid").read_bytes()
            )  # mended
            wait_for(
                lambda: stub.GetLibrary(pb.GetLibraryRequest(), timeout=30).version != before.library_version,
                "the mended version",
            )
            after = stub.Score(request, timeout=60)
            assert after.library_version == Library.open(library).version and running.state.failure is None
            assert [e.id for e in stub.ListExemplars(pb.ListExemplarsRequest(), timeout=30).exemplars][-1] == "broken"
    finally:
        loop.run(running.stop(0))
        loop.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1
        and f"still serving version {before.library_version}" in warnings[0]
        and "'broken'" in warnings[0]
    )
