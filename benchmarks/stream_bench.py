"""Streaming throughput and latency of the scoring service (a benchmark, not a test).

Starts 'rollmatch serve' on a free loopback port with the default library, streams 8-beat windows of real
Bach chorales from many concurrent asyncio clients (one fragment per request, several requests in flight
per stream), and prints fragments/s, per-request latency percentiles and the server's batch sizes, next to
the raw engine throughput on the same fragments in this process.

    python benchmarks/stream_bench.py [--clients 16] [--requests 40] [--in-flight 4]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
from music21 import corpus

from rollmatch import Library, Scorer, read_notes, windows
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch._pb.rollmatch.v1 import rollmatch_pb2_grpc as pb_grpc
from rollmatch.client import fragment_message


def material(count: int) -> list[np.ndarray]:
    """``count`` eight-beat windows of Bach chorales (real four-voice music)."""
    out: list[np.ndarray] = []
    for path in sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")[200:]:
        out += [w for _, _, w in windows(read_notes(path), window_beats=8) if w.size]
        if len(out) >= count:
            return out[:count]
    return out


async def client(target: str, fragments: list[np.ndarray], in_flight: int, latencies: list[float]) -> None:
    sent: dict[str, float] = {}
    slots = asyncio.Semaphore(in_flight)

    async def requests():
        for i, fragment in enumerate(fragments):
            await slots.acquire()
            sent[str(i)] = time.perf_counter()
            yield pb.ScoreStreamRequest(id=str(i), fragments=[fragment_message(fragment)])

    async with grpc.aio.insecure_channel(target) as channel:
        async for response in pb_grpc.RollmatchServiceStub(channel).ScoreStream(requests()):
            latencies.append(time.perf_counter() - sent[response.id])
            assert not response.HasField("error"), response.error.message
            slots.release()


async def load(target: str, per_client: list[list[np.ndarray]], in_flight: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    began = time.perf_counter()
    await asyncio.gather(*(client(target, frags, in_flight, latencies) for frags in per_client))
    return time.perf_counter() - began, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=24, help="requests (one fragment each) per client")
    parser.add_argument("--in-flight", type=int, default=4, help="requests awaiting an answer per stream")
    parser.add_argument("--batch-max", type=int, default=64)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    args = parser.parse_args()

    fragments = material(args.clients * args.requests)
    per_client = [fragments[i :: args.clients] for i in range(args.clients)]
    scorer = Scorer(Library.open(), backend="cpu")
    scorer.score(fragments[:8])  # warm the template bank
    began = time.perf_counter()
    scorer.score(fragments)
    raw = len(fragments) / (time.perf_counter() - began)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rollmatch",
            "serve",
            "--port",
            "0",
            "--backend",
            "cpu",
            "--batch-max",
            str(args.batch_max),
            "--batch-wait-ms",
            str(args.batch_wait_ms),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    target = server.stdout.readline().split()[-1]
    try:
        asyncio.run(load(target, [f[:4] for f in per_client[:4]], 1))  # warm-up
        elapsed, latencies = asyncio.run(load(target, per_client, args.in_flight))
    finally:
        server.send_signal(signal.SIGTERM)
        log = server.communicate(timeout=60)[1]
    lines = re.findall(r"largest (\d+); (\d+) batches, (\d+) fragments in all", log)
    largest = max(int(line[0]) for line in lines)
    count, total = int(lines[-1][1]), int(lines[-1][2])
    ms = np.percentile(np.array(latencies) * 1e3, [50, 99])
    streamed = len(latencies) / elapsed
    print(
        f"library: default, {len(scorer.ids)} exemplars x {len(scorer.bank().stretches)} stretches; "
        f"fragments: {len(fragments)} eight-beat chorale windows"
    )
    print(
        f"load: {args.clients} concurrent streams x {args.requests} requests, {args.in_flight} in flight per stream; "
        f"batching: max {args.batch_max} fragments / {args.batch_wait_ms:g} ms"
    )
    print(f"raw engine, one batch in-process:  {raw:8.1f} fragments/s")
    print(f"streamed through the service:      {streamed:8.1f} fragments/s  ({streamed / raw:.0%} of raw)")
    print(f"latency per request: p50 {ms[0]:.0f} ms, p99 {ms[1]:.0f} ms")
    print(
        f"server batches (warm-up included): {count} batches, {total / count:.1f} fragments on average, "
        f"largest {largest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
