"""Assemble and run the gRPC server: service, batching, live library reload, health, reflection, auth, TLS,
limits, shutdown."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rollmatch import defaults
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2_grpc as pb_grpc
from rollmatch.backend import DEFAULT_BACKEND
from rollmatch.checks import number, whole_number
from rollmatch.errors import ParameterError
from rollmatch.library import Library

from .batcher import Batcher
from .service import LibraryState, RollmatchServicer

log = logging.getLogger("rollmatch.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RollmatchService"].full_name
HEALTH_METHODS = f"/{health.SERVICE_NAME}/"
CURATION_METHODS = frozenset(f"/{SERVICE_NAME}/{m}" for m in ("AddExemplar", "RemoveExemplar", "SetThresholds"))


@dataclass(frozen=True)
class ServerConfig:
    library: Path | None = None  #: None: the default library
    host: str = defaults.SERVER_HOST
    port: int = defaults.SERVER_PORT  #: 0 picks a free port
    curator_token: str | None = None  #: None disables the curation RPCs
    tls_cert: Path | None = None
    tls_key: Path | None = None
    backend: str = DEFAULT_BACKEND
    batch_max_fragments: int = defaults.BATCH_MAX_FRAGMENTS
    batch_max_wait_ms: float = defaults.BATCH_MAX_WAIT_MS
    grace_s: float = defaults.SHUTDOWN_GRACE_S
    max_concurrent_rpcs: int = defaults.MAX_CONCURRENT_RPCS
    library_poll_s: float = defaults.LIBRARY_POLL_S  #: 0: serve changes on disk only after a restart
    library_retry_s: float = defaults.LIBRARY_RETRY_S


class Gate(grpc.aio.ServerInterceptor):
    """Admits calls: none once draining starts (UNAVAILABLE, so clients retry elsewhere), and curation calls
    only with ``authorization: Bearer <token>``; scoring, reading the library, health and reflection are open."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        self.draining = False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if self.draining and not details.method.startswith(HEALTH_METHODS):
            return _refuse(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if details.method not in CURATION_METHODS:
            return await continuation(details)
        if self._token is None:
            return _refuse(
                grpc.StatusCode.PERMISSION_DENIED, "curation is disabled on this server (start it with --curator-token)"
            )
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        scheme, _, token = sent.partition(" ")
        if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 6750, RFC 9110)
            return _refuse(grpc.StatusCode.UNAUTHENTICATED, "curation needs 'authorization: Bearer <curator token>'")
        if not hmac.compare_digest(token.encode(), self._token):
            return _refuse(grpc.StatusCode.PERMISSION_DENIED, "the curator token is not valid")
        return await continuation(details)


def _refuse(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(abort)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    state: LibraryState
    batcher: Batcher
    health: Any
    gate: Gate
    watcher: asyncio.Task[None] | None  #: the library watch, when live reload is on

    async def stop(self, grace_s: float, *, notice_s: float = 0.0) -> None:
        """Health NOT_SERVING and new calls refused for ``notice_s`` seconds, then the transport closes and
        calls in flight get ``grace_s`` seconds to finish."""
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
        await self.health.enter_graceful_shutdown()
        self.gate.draining = True
        await asyncio.sleep(notice_s)
        await self.server.stop(grace_s)
        await self.batcher.stop()


async def start(config: ServerConfig) -> RunningServer:
    """Start serving ``config``; raises rollmatch errors for a bad library, port or certificate."""
    whole_number(config.port, "port", at_least=0, at_most=65535)
    whole_number(
        config.batch_max_fragments, "batch_max_fragments", at_least=1, at_most=defaults.MAX_FRAGMENTS_PER_REQUEST
    )
    number(config.batch_max_wait_ms, "batch_max_wait_ms", at_least=0, at_most=defaults.MAX_BATCH_WAIT_MS)
    number(config.grace_s, "grace_s", at_least=0)
    whole_number(
        config.max_concurrent_rpcs, "max_concurrent_rpcs", at_least=1, at_most=defaults.MAX_CONCURRENT_RPCS_LIMIT
    )
    number(config.library_poll_s, "library_poll_s", at_least=0)
    number(config.library_retry_s, "library_retry_s", at_least=0)
    state = LibraryState(Library.open(config.library), backend=config.backend, retry_s=config.library_retry_s)
    batcher = Batcher(max_fragments=config.batch_max_fragments, max_wait_s=config.batch_max_wait_ms / 1e3)
    gate = Gate(config.curator_token)
    server = grpc.aio.server(
        interceptors=[gate],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", defaults.MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", defaults.MAX_MESSAGE_BYTES),
            # grpc shares ports by default (SO_REUSEPORT): a second server would silently split the traffic
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_RollmatchServiceServicer_to_server(RollmatchServicer(state, batcher), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{config.host}:{config.port}"
    try:
        if config.tls_cert or config.tls_key:
            if not (config.tls_cert and config.tls_key):
                raise ParameterError("TLS needs both --tls-cert and --tls-key")
            credentials = grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except OSError as exc:
        raise ParameterError(f"cannot read the TLS files: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # grpc's way of saying the address cannot be bound
        raise ParameterError(f"cannot listen on {address}: {exc}") from None
    await server.start()
    batcher.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    library = state.library
    log.info(
        "serving library %r version %s (%d exemplars) on %s:%d with the %s engine%s",
        library.config.name,
        library.version,
        len(library.exemplars),
        config.host,
        port,
        state.scorer.backend,
        " over TLS" if config.tls_cert else "",
    )
    watcher = None
    if config.library_poll_s > 0:
        watcher = asyncio.get_running_loop().create_task(
            state.watch(config.library_poll_s), name="rollmatch-library-watch"
        )
    return RunningServer(server, port, state, batcher, health_servicer, gate, watcher)


async def serve(config: ServerConfig, *, ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain: health NOT_SERVING, new calls refused, calls in flight
    finish within the grace period."""
    running = await start(config)
    if ready is not None:
        ready(running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down: calls in flight get %.0f s", config.grace_s)
    await running.stop(config.grace_s, notice_s=defaults.SHUTDOWN_NOTICE_S)
    log.info("stopped")


class BackgroundServer:
    """A server on an event loop of its own, in a background thread, for the length of a ``with`` block:
    what ``rollmatch search`` runs on a free loopback port when it is given no ``--server``."""

    #: Seconds to wait for the server to start or to stop.
    TIMEOUT_S = 120.0

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rollmatch-local-server", daemon=True)
        self.running: RunningServer | None = None

    @property
    def target(self) -> str:
        """``host:port`` to connect to."""
        assert self.running is not None, "the server runs only inside the with block"
        return f"{self.config.host}:{self.running.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        try:
            self.running = asyncio.run_coroutine_threadsafe(start(self.config), self._loop).result(self.TIMEOUT_S)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.running is not None:
                asyncio.run_coroutine_threadsafe(self.running.stop(0), self._loop).result(self.TIMEOUT_S)
        finally:
            self._close()

    def _close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.TIMEOUT_S)
        self._loop.close()
