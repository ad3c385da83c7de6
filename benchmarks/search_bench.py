"""Phrase search throughput: candidates scored per second through the service, and where the time goes
(a benchmark, not a test).

Runs the machinery of 'rollmatch search' (PhraseSearch, the variation generator, the default library) and
splits its wall time into:

- generation: time inside the generator, measured by the search;
- scoring through the service: from sending a step's candidates on a ScoreStream to the last answer,
  measured by the search, and split into
  - engine: the server's own time in engine calls, from its batch statistics (with --subprocess, from the
    last statistics line of its log, less the wall time of the warm-up call that built its template bank,
    so that the engine figure is a slight underestimate there),
  - transport: the rest: protobuf conversion both ways, gRPC, the batcher's wait and queueing;
- bookkeeping: the rest of the wall time (cutting windows, ranking, the final check of the result).

By default the server runs inside this process on a thread, as 'rollmatch search' runs it without
--server; --subprocess runs 'rollmatch serve' in a process of its own instead.

    python benchmarks/search_bench.py [--bars 16] [--beam 4] [--candidates 16] [--seed 0] [--subprocess]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np

from rollmatch import Library, defaults
from rollmatch.client import Client
from rollmatch.generators import Material, variation
from rollmatch.search import PhraseSearch, SearchResult
from rollmatch.server.app import BackgroundServer, ServerConfig


class RecordingClient:
    """A client that keeps every streamed request (one candidate each), to count candidates and windows."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.requests: list[list[np.ndarray]] = []

    def score_stream(self, batches, **options):
        batches = list(batches)
        self.requests += batches
        return self.client.score_stream(batches, **options)

    def score(self, fragments, **options):
        return self.client.score(fragments, **options)


class Served:
    """A server on a free loopback port: in this process (its statistics readable), or 'rollmatch serve' in a
    process of its own (its statistics read from its log once it has stopped)."""

    def __init__(self, in_subprocess: bool) -> None:
        self.in_subprocess = in_subprocess
        self.background: BackgroundServer | None = None
        self.log = ""

    @contextlib.contextmanager
    def run(self) -> Iterator[str]:
        if not self.in_subprocess:
            with BackgroundServer(ServerConfig(port=0, backend="cpu")) as self.background:
                yield self.background.target
            return
        process = subprocess.Popen([sys.executable, "-m", "rollmatch", "serve", "--port", "0", "--backend", "cpu", "--grace", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield process.stdout.readline().split()[-1]
        finally:
            process.send_signal(signal.SIGTERM)
            self.log = process.communicate(timeout=60)[1]

    def totals(self) -> tuple[float, int, int]:
        """(engine seconds, fragments, batches) over the server's life, from the last statistics line of its log."""
        batches, fragments, seconds = re.findall(r"(\d+) batches, (\d+) fragments in all, ([\d.]+) s in the engine", self.log)[-1]
        return float(seconds), int(fragments), int(batches)


def show(label: str, seconds: float, total: float, extra: str = "") -> None:
    print(f"  {label:<34} {seconds:7.2f} s  {seconds / total:4.0%}{extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--beam", type=int, default=defaults.BEAM_WIDTH)
    parser.add_argument("--candidates", type=int, default=defaults.CANDIDATES_PER_BEAM)
    parser.add_argument("--seed", type=int, default=defaults.SEARCH_SEED)
    parser.add_argument("--subprocess", action="store_true", help="run the server as 'rollmatch serve' in its own process")
    args = parser.parse_args()

    material = Material.from_library(Library.open())
    server = Served(args.subprocess)
    with server.run() as target, Client(target) as client:
        began = time.perf_counter()
        client.score([material.bars[0].notes])  # warm-up: the server builds its template bank
        warm_up = time.perf_counter() - began
        stats = server.background.running.batcher.stats if server.background else None
        before = (stats.engine_seconds, stats.fragments, stats.batches) if stats else (warm_up, 1, 1)
        recording = RecordingClient(client)
        result: SearchResult = PhraseSearch(recording, variation, material=material, name="variation", bars=args.bars, beam=args.beam,
                                            candidates=args.candidates, seed=args.seed).run()
        after = (stats.engine_seconds, stats.fragments, stats.batches) if stats else None
    if after is None:
        after = server.totals()

    windows = sum(len(r) for r in recording.requests)
    candidates = len(recording.requests)
    fragments, batches = after[1] - before[1], after[2] - before[2]
    # the engine time after the warm-up also covers the final check of the result: count the search's share
    engine = (after[0] - before[0]) * windows / fragments
    source = "its log, less the warm-up call's wall time" if args.subprocess else "its batch statistics"
    engine_note = f"   (the server's own time, from {source}; {batches} batches of {fragments / batches:.1f} windows on average)"
    total = result.seconds
    service = result.scoring_seconds
    print(f"search: {args.bars} bars, beam {args.beam}, {args.candidates} candidates per beam, window {defaults.WINDOW_BARS} bars, "
          f"seed {args.seed}, variation generator, default library; server {'in its own process' if args.subprocess else 'in this process'}")
    print(f"result: {'complete' if result.complete else 'stopped: ' + result.stopped}, {result.bars} bars, "
          f"{result.good_windows} of {len(result.windows)} windows GOOD; {candidates} candidates scored as {windows} windows, "
          f"{result.dead_ends} dead ends, {result.backtracks} backtracks")
    print(f"through the service: {candidates / service:.1f} candidates/s ({windows / service:.1f} windows/s); "
          f"end to end: {candidates / total:.1f} candidates/s")
    print(f"wall time {total:.2f} s:")
    show("generation", result.generation_seconds, total)
    show("scoring through the service", service, total)
    show("  engine", engine, total, engine_note)
    show("  transport and queueing", service - engine, total)
    show("bookkeeping and final check", total - result.generation_seconds - service, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
