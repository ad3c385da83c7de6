"""Phrase search per generator: candidates scored per second through the service, acceptance, novelty and
diversity of the result, and where the time goes (a benchmark, not a test).

Runs the machinery of 'rollmatch search' (PhraseSearch, the default library, its default novelty ceiling and
continuity rules) once per generator (variation, markov and random-walk by default) and reports, for each:

- candidates scored per second through the service, the acceptance rate (candidates whose windows all passed,
  of those scored) and evaluations (windows scored) per bar of the result;
- novelty: the nearest good exemplar's similarity per window (highest, mean) and the longest copied stretch;
  diversity: distinct exemplars, the largest share one explains, pitch-class and rhythm entropy against the
  library's own;
- the acceptance of each transformation the generator applied;
- the wall time split into:

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

    python benchmarks/search_bench.py [--generators variation,markov,random-walk] [--bars 16] [--beam 4]
                                      [--candidates 16] [--seed 0] [--subprocess]
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
from rollmatch.server.app import BackgroundServer, ServerConfig

from rollmatch import Library, defaults
from rollmatch.client import Client
from rollmatch.errors import SearchError
from rollmatch.generators import Material, load_generator
from rollmatch.search import PhraseSearch, SearchResult


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
        process = subprocess.Popen(
            [sys.executable, "-m", "rollmatch", "serve", "--port", "0", "--backend", "cpu", "--grace", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield process.stdout.readline().split()[-1]
        finally:
            process.send_signal(signal.SIGTERM)
            self.log = process.communicate(timeout=60)[1]

    def totals(self) -> tuple[float, int, int]:
        """(engine seconds, fragments, batches) over the server's life, from the last statistics line of its log."""
        batches, fragments, seconds = re.findall(
            r"(\d+) batches, (\d+) fragments in all, ([\d.]+) s in the engine", self.log
        )[-1]
        return float(seconds), int(fragments), int(batches)


def show(label: str, seconds: float, total: float, extra: str = "") -> None:
    print(f"  {label:<34} {seconds:7.2f} s  {seconds / total:4.0%}{extra}")


def engine_counters(server: Served) -> tuple[float, int, int] | None:
    stats = server.background.running.batcher.stats if server.background else None
    return (stats.engine_seconds, stats.fragments, stats.batches) if stats else None


def bench(name: str, client: Client, material: Material, server: Served, args: argparse.Namespace) -> dict[str, object]:
    """One search with generator ``name``; prints its figures and returns the row of the summary table."""
    recording = RecordingClient(client)
    before = engine_counters(server)
    search = PhraseSearch(
        recording,
        load_generator(name),
        material=material,
        name=name,
        bars=args.bars,
        beam=args.beam,
        candidates=args.candidates,
        seed=args.seed,
        max_evaluations=args.max_evaluations,
    )
    began = time.perf_counter()
    try:
        result: SearchResult | None = search.run()
    except SearchError as exc:
        result = None
        print(f"\n{name}: gave up after {time.perf_counter() - began:.1f} s: {str(exc)[:300]}")
    after = engine_counters(server)
    windows = sum(len(r) for r in recording.requests)
    candidates = len(recording.requests)
    rate = search.accepted / search.scored if search.scored else 0.0
    row: dict[str, object] = {"generator": name, "acceptance": rate, "complete": bool(result and result.complete)}
    if result is None:
        row.update({"per_second": candidates / search.scoring_seconds if search.scoring_seconds else 0.0})
        return row
    total, service = result.seconds, result.scoring_seconds
    report = result.to_dict()
    nearest = [w.verdict.nearest.similarity if w.verdict.nearest else 0.0 for w in result.windows]
    print(
        f"\n{name}: {'complete' if result.complete else 'stopped: ' + result.stopped}, {result.bars} bars, "
        f"{result.good_windows} of {len(result.windows)} windows GOOD; {candidates} candidates scored as {windows} windows, "
        f"{result.dead_ends} dead ends, {result.backtracks} backtracks"
    )
    print(
        f"  through the service: {candidates / service:.1f} candidates/s ({windows / service:.1f} windows/s); "
        f"end to end: {candidates / total:.1f} candidates/s"
    )
    print(
        f"  acceptance: {search.accepted} of {search.scored} scored candidates ({rate:.1%}); per bar of the result "
        f"{search.proposed / args.bars:.1f} candidates proposed and {result.evaluations / args.bars:.1f} evaluations; "
        f"rejected: {dict(search.rejected.most_common())}"
    )
    print(
        "  by transformation (accepted / scored): "
        + ", ".join(
            f"{kind} {a['accepted']}/{a['scored']} ({a['accepted'] / a['scored']:.0%})"
            for kind, a in result.acceptance.items()
        )
    )
    d = result.diversity
    print(
        f"  novelty: nearest exemplar per window highest {max(nearest):.3f}, mean {np.mean(nearest):.3f}; longest copied stretch "
        f"{report['novelty']['longest_copy_beats']:g} beats"
    )
    print(
        f"  diversity: {d['distinct_exemplars']} exemplars, largest share {d['largest_share']:.0%}; pitch-class entropy "
        f"{d['pitch_class_entropy']['result']:.2f} bits (library {d['pitch_class_entropy']['library']:.2f}), rhythm entropy "
        f"{d['rhythm_entropy']['result']:.2f} (library {d['rhythm_entropy']['library']:.2f})"
    )
    if before and after:
        fragments = after[1] - before[1]
        engine = (
            (after[0] - before[0]) * windows / fragments
        )  # the engine time also covers the final check: the search's share
    else:
        engine = float("nan")
    print(f"  wall time {total:.2f} s:")
    show("generation", result.generation_seconds, total)
    show("scoring through the service", service, total)
    show("  engine", engine, total, "   (the server's own time, from its batch statistics)")
    show("  transport and queueing", service - engine, total)
    show("bookkeeping and final check", total - result.generation_seconds - service, total)
    row.update(
        {
            "per_second": candidates / service,
            "per_bar": result.evaluations / args.bars,
            "proposed": search.proposed / args.bars,
            "highest": max(nearest),
            "mean": float(np.mean(nearest)),
            "exemplars": d["distinct_exemplars"],
            "share": d["largest_share"],
            "copy": report["novelty"]["longest_copy_beats"],
        }
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default="variation,markov,random-walk")
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--beam", type=int, default=defaults.BEAM_WIDTH)
    parser.add_argument("--candidates", type=int, default=defaults.CANDIDATES_PER_BEAM)
    parser.add_argument("--seed", type=int, default=defaults.SEARCH_SEED)
    parser.add_argument("--max-evaluations", type=int, default=5000, help="each search's budget (default 5000)")
    parser.add_argument(
        "--subprocess", action="store_true", help="run the server as 'rollmatch serve' in its own process"
    )
    args = parser.parse_args()

    material = Material.from_library(Library.open())
    server = Served(args.subprocess)
    print(
        f"search: {args.bars} bars, beam {args.beam}, {args.candidates} candidates per beam, window {defaults.WINDOW_BARS} bars, "
        f"seed {args.seed}, default library, max_copy {defaults.MAX_COPY}, max_reuse {defaults.MAX_REUSE}; server "
        f"{'in its own process (engine time not split out)' if args.subprocess else 'in this process'}"
    )
    with server.run() as target, Client(target) as client:
        client.score([material.bars[0].notes])  # warm-up: the server builds its template bank
        rows = [bench(name, client, material, server, args) for name in args.generators.split(",")]
    print("\nsummary")
    print(
        f"  {'generator':<12} {'complete':>8} {'accepted':>9} {'cand/s':>7} {'prop/bar':>8} {'eval/bar':>9} {'nearest max':>11} {'mean':>6} "
        f"{'exemplars':>9} {'share':>6} {'copy beats':>10}"
    )
    for r in rows:
        if "per_bar" in r:
            print(
                f"  {r['generator']:<12} {'yes' if r['complete'] else 'no':>8} {r['acceptance']:>9.1%} {r['per_second']:>7.1f} {r['proposed']:>8.1f} "
                f"{r['per_bar']:>9.1f} {r['highest']:>11.3f} {r['mean']:>6.3f} {r['exemplars']:>9} {r['share']:>6.0%} {r['copy']:>10g}"
            )
        else:
            print(
                f"  {r['generator']:<12} {'no':>8} {r['acceptance']:>9.1%} {r['per_second']:>7.1f}   (gave up: nothing to report)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
