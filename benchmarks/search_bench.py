"""Phrase search per generator and per critic: candidates scored per second, acceptance, novelty and diversity
of the result, and where the time goes (a benchmark, not a test).

Runs the machinery of 'rollmatch search' (PhraseSearch, the default library, its default novelty ceiling and
continuity rules) once per generator (variation, markov and random-walk by default) and per critic:

- local: a Scorer in this process, as 'rollmatch search' scores without --server;
- loopback: a server on a free loopback port in this process, through the gRPC client (ScoreStream, many
  requests in flight), as the search scored before it had a local critic and as it scores with --server;
- subprocess: 'rollmatch serve' in a process of its own (--critics subprocess), engine time not split out.

The same seed gives the same piece through every critic (a test checks it), so only the timings differ. For
each search it reports:

- candidates scored per second through the critic, the acceptance rate (candidates whose windows all passed,
  of those scored) and evaluations (windows scored) per bar of the result;
- novelty: the nearest good exemplar's similarity per window (highest, mean) and the longest copied stretch;
  diversity: distinct exemplars, the largest share one explains, pitch-class and rhythm entropy against the
  library's own;
- the acceptance of each transformation the generator applied;
- the wall time split into generation (inside the generator), scoring (from handing a step's candidates to the
  critic to the last verdict; for loopback split into the server's own engine time, from its batch statistics,
  and transport: protobuf conversion, gRPC, the batcher's wait and queueing) and bookkeeping (the rest).

The summary gives each generator's scoring rate and wall time with each critic, and the ratio local/loopback.

    python benchmarks/search_bench.py [--generators variation,markov,random-walk] [--critics local,loopback]
                                      [--bars 16] [--beam 4] [--candidates 16] [--seed 0]
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

from rollmatch import Critic, Library, Scorer, defaults
from rollmatch.client import Client, RemoteScorer
from rollmatch.errors import SearchError
from rollmatch.generators import Material, load_generator
from rollmatch.search import PhraseSearch, SearchResult, SearchSettings


class RecordingCritic:
    """A critic that keeps every batch it is asked to judge (one candidate each), to count candidates and
    windows."""

    def __init__(self, critic: Critic) -> None:
        self.critic = critic
        self.requests: list[list[np.ndarray]] = []

    def score_batches(self, batches, **options):
        self.requests += list(batches)
        return self.critic.score_batches(batches, **options)

    def __getattr__(self, name):
        return getattr(self.critic, name)


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


def engine_counters(server: Served | None) -> tuple[float, int, int] | None:
    stats = server.background.running.batcher.stats if server and server.background else None
    return (stats.engine_seconds, stats.fragments, stats.batches) if stats else None


def bench(
    name: str, kind: str, critic: Critic, material: Material, server: Served | None, args: argparse.Namespace
) -> dict[str, object]:
    """One search with generator ``name`` through ``critic`` (of ``kind``); prints its figures and returns the
    row of the summary table."""
    recording = RecordingCritic(critic)
    before = engine_counters(server)
    settings = SearchSettings(
        bars=args.bars,
        beam=args.beam,
        candidates=args.candidates,
        seed=args.seed,
        max_evaluations=args.max_evaluations,
    )
    search = PhraseSearch(recording, load_generator(name), material=material, name=name, settings=settings)
    began = time.perf_counter()
    try:
        result: SearchResult | None = search.run()
    except SearchError as exc:
        result = None
        print(f"\n{name} ({kind}): gave up after {time.perf_counter() - began:.1f} s: {str(exc)[:300]}")
    after = engine_counters(server)
    windows = sum(len(r) for r in recording.requests)
    candidates = len(recording.requests)
    rate = search.accepted / search.scored if search.scored else 0.0
    row: dict[str, object] = {
        "generator": name,
        "critic": kind,
        "acceptance": rate,
        "complete": bool(result and result.complete),
        "wall": time.perf_counter() - began,
    }
    if result is None:
        row.update({"per_second": candidates / search.scoring_seconds if search.scoring_seconds else 0.0})
        return row
    total, service = result.seconds, result.scoring_seconds
    report = result.to_dict()
    nearest = [w.verdict.nearest.similarity if w.verdict.nearest else 0.0 for w in result.windows]
    print(
        f"\n{name} ({kind}): {'complete' if result.complete else 'stopped: ' + result.stopped}, {result.bars} bars, "
        f"{result.good_windows} of {len(result.windows)} windows GOOD; "
        f"{candidates} candidates scored as {windows} windows, "
        f"{result.dead_ends} dead ends, {result.backtracks} backtracks"
    )
    print(
        f"  through the critic: {candidates / service:.1f} candidates/s ({windows / service:.1f} windows/s); "
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
        f"  novelty: nearest exemplar per window highest {max(nearest):.3f}, mean {np.mean(nearest):.3f}; "
        "longest copied stretch "
        f"{report['novelty']['longest_copy_beats']:g} beats"
    )
    print(
        f"  diversity: {d['distinct_exemplars']} exemplars, largest share {d['largest_share']:.0%}; "
        f"pitch-class entropy {d['pitch_class_entropy']['result']:.2f} bits "
        f"(library {d['pitch_class_entropy']['library']:.2f}), rhythm entropy "
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
    show("scoring through the critic", service, total)
    if server is not None:
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
    parser.add_argument("--critics", default="local,loopback", help="of local, loopback and subprocess")
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--beam", type=int, default=defaults.BEAM_WIDTH)
    parser.add_argument("--candidates", type=int, default=defaults.CANDIDATES_PER_BEAM)
    parser.add_argument("--seed", type=int, default=defaults.SEARCH_SEED)
    parser.add_argument("--max-evaluations", type=int, default=5000, help="each search's budget (default 5000)")
    args = parser.parse_args()

    library = Library.open()
    material = Material.from_library(library)
    print(
        f"search: {args.bars} bars, beam {args.beam}, {args.candidates} candidates per beam, "
        f"window {defaults.WINDOW_BARS} bars, seed {args.seed}, default library, max_copy {defaults.MAX_COPY}, "
        f"max_reuse {defaults.MAX_REUSE}; critics {args.critics}"
    )
    rows = []
    for kind in args.critics.split(","):
        if kind == "local":
            critic = Scorer(library, backend="cpu")
            critic.score([material.bars[0].notes])  # warm-up: the template bank is built
            rows += [bench(name, kind, critic, material, None, args) for name in args.generators.split(",")]
            continue
        server = Served(in_subprocess=kind == "subprocess")
        with server.run() as target, Client(target) as client:
            remote = RemoteScorer(client)
            remote.score([material.bars[0].notes])  # warm-up: the server builds its template bank
            shown = server if kind == "loopback" else None
            rows += [bench(name, kind, remote, material, shown, args) for name in args.generators.split(",")]
    print("\nsummary")
    print(
        f"  {'generator':<12} {'critic':<10} {'complete':>8} {'accepted':>9} {'cand/s':>7} {'wall s':>7} "
        f"{'eval/bar':>9} {'nearest max':>11} {'mean':>6} {'exemplars':>9} {'share':>6} {'copy beats':>10}"
    )
    for r in rows:
        head = (
            f"  {r['generator']:<12} {r['critic']:<10} {'yes' if r['complete'] else 'no':>8} {r['acceptance']:>9.1%} "
            f"{r['per_second']:>7.1f} {r['wall']:>7.1f}"
        )
        if "per_bar" in r:
            print(
                f"{head} {r['per_bar']:>9.1f} {r['highest']:>11.3f} {r['mean']:>6.3f} {r['exemplars']:>9} "
                f"{r['share']:>6.0%} {r['copy']:>10g}"
            )
        else:
            print(f"{head}   (gave up: nothing to report)")
    by = {(r["generator"], r["critic"]): r for r in rows}
    for name in args.generators.split(","):
        local, loopback = by.get((name, "local")), by.get((name, "loopback"))
        if local and loopback and local["per_second"] and loopback["per_second"]:
            print(
                f"  {name}: local scores {local['per_second'] / loopback['per_second']:.2f}x the candidates per second "
                f"of the loopback server; wall time {local['wall']:.1f} s against {loopback['wall']:.1f} s "
                f"({loopback['wall'] / local['wall']:.2f}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
