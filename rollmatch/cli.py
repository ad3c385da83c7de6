"""The ``rollmatch`` command line: parse arguments, make one library call, print.

Exit codes: 0 success, 1 something could not be read or scored, 2 a usage error, 3 an internal error,
130 interrupted. Errors are one line on stderr, never a traceback (set ROLLMATCH_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import NoReturn

from . import __version__, defaults
from .backend import BACKENDS, DEFAULT_BACKEND
from .errors import ParameterError, RollmatchError
from .library import Library
from .scoring import FileResult, Scorer, score_files
from .verdict import Match

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def exit_code(error: RollmatchError) -> int:
    """The one mapping from error classes to exit codes."""
    return EXIT_USAGE if isinstance(error, ParameterError) else EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _stretch_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(Fraction(part.strip())) for part in text.split(",") if part.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of factors like 1/2,1,3/2") from None


def _track(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rollmatch", description="Judge music fragments against good and bad exemplars.")
    parser.add_argument("--version", action="version", version=f"rollmatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    score = commands.add_parser("score", help="score files against an exemplar library")
    score.add_argument("files", nargs="+", metavar="FILE", help="MIDI, MusicXML, kern, ABC or JSON note list")
    score.add_argument("--library", metavar="DIR", help="exemplar library (default: the shipped exemplars/)")
    score.add_argument("--json", action="store_true", help="one JSON object per line")
    score.add_argument("--window", type=float, metavar="BEATS", help="score window by window")
    score.add_argument("--hop", type=float, metavar="BEATS", help="window hop (default: the window)")
    score.add_argument("--transpose", type=int, default=defaults.TRANSPOSE_RANGE, metavar="R",
                       help=f"search transpositions -R..+R semitones (default {defaults.TRANSPOSE_RANGE})")
    score.add_argument("--stretches", type=_stretch_list, default=defaults.STRETCHES, metavar="LIST",
                       help="time-stretch factors, e.g. 1/2,1,2 (default 1/2,2/3,3/4,1,4/3,3/2,2)")
    score.add_argument("--good-threshold", type=float, metavar="X", help="replace the library's good threshold")
    score.add_argument("--bad-threshold", type=float, metavar="Y", help="replace the library's bad threshold")
    score.add_argument("--track", type=_track, action="append", metavar="N|NAME", help="only these tracks/parts")
    score.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="array backend (default auto)")
    score.add_argument("--server", metavar="HOST:PORT", help="score through a running rollmatch server")
    score.add_argument("--tls-ca", metavar="PEM", help="with --server: trust this certificate for TLS")
    score.set_defaults(handler=_score)

    serve = commands.add_parser("serve", help="serve scoring and curation over gRPC")
    serve.add_argument("--library", metavar="DIR", help="exemplar library (default: the shipped exemplars/)")
    serve.add_argument("--host", default=defaults.SERVER_HOST, help=f"address to listen on (default {defaults.SERVER_HOST})")
    serve.add_argument("--port", type=int, default=defaults.SERVER_PORT, help=f"port, 0 for any free one (default {defaults.SERVER_PORT})")
    serve.add_argument("--curator-token", default=os.environ.get(defaults.CURATOR_TOKEN_ENV),
                       help=f"token for the curation calls (default ${defaults.CURATOR_TOKEN_ENV}; none disables them)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="and this private key")
    serve.add_argument("--batch-max", type=int, default=defaults.BATCH_MAX_FRAGMENTS, metavar="N",
                       help=f"close a batch at N fragments (default {defaults.BATCH_MAX_FRAGMENTS})")
    serve.add_argument("--batch-wait-ms", type=float, default=defaults.BATCH_MAX_WAIT_MS, metavar="MS",
                       help=f"or MS milliseconds after its first request (default {defaults.BATCH_MAX_WAIT_MS:g})")
    serve.add_argument("--grace", type=float, default=defaults.SHUTDOWN_GRACE_S, metavar="SECONDS",
                       help=f"time calls in flight get after SIGTERM (default {defaults.SHUTDOWN_GRACE_S:g})")
    serve.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="array backend (default auto)")
    serve.set_defaults(handler=_serve)

    library = commands.add_parser("library", help="create and curate exemplar libraries")
    actions = library.add_subparsers(dest="action", required=True, parser_class=_Parser)
    init = actions.add_parser("init", help="create an empty library")
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--name", help="library name (default: the directory's)")
    init.set_defaults(handler=_library_init)

    add = actions.add_parser("add", help="add a file (or part of it) as an exemplar")
    add.add_argument("dir", metavar="DIR")
    add.add_argument("file", metavar="FILE")
    add.add_argument("--label", required=True, choices=("good", "bad"))
    add.add_argument("--id", help="exemplar id (default: from the file name)")
    add.add_argument("--start", type=float, metavar="BEAT", help="first beat to take")
    add.add_argument("--end", type=float, metavar="BEAT", help="beat to stop before")
    add.add_argument("--track", type=_track, action="append", metavar="N|NAME", help="only these tracks/parts")
    add.add_argument("--threshold", type=float, help="this exemplar's own similarity threshold")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    add.add_argument("--description", default="", help="what this exemplar shows")
    add.add_argument("--provenance", help="where it comes from (default: the file name)")
    add.set_defaults(handler=_library_add)

    remove = actions.add_parser("remove", help="remove an exemplar")
    remove.add_argument("dir", metavar="DIR")
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(handler=_library_remove)

    listing = actions.add_parser("list", help="list the exemplars")
    listing.add_argument("dir", metavar="DIR")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_library_list)

    search = commands.add_parser("search", help="grow a phrase bar by bar, every window GOOD, scored through the service")
    search.add_argument("-o", "--output", required=True, metavar="FILE.mid", help="MIDI file to write; the JSON report goes beside it")
    search.add_argument("--bars", type=int, default=defaults.SEARCH_BARS, metavar="N",
                        help=f"length of the result in bars, the start included (default {defaults.SEARCH_BARS})")
    search.add_argument("--server", metavar="HOST:PORT", help="score through this server (default: a local one for the run)")
    search.add_argument("--tls-ca", metavar="PEM", help="with --server: trust this certificate for TLS")
    search.add_argument("--library", metavar="DIR",
                        help="library the generator draws on, and the local server scores with (default: the shipped exemplars/)")
    search.add_argument("--generator", default=defaults.GENERATOR, metavar="NAME|MODULE:FUNCTION",
                        help=f"variation, random-walk, module:function or file.py:function (default {defaults.GENERATOR})")
    search.add_argument("--beam", type=int, default=defaults.BEAM_WIDTH, metavar="B",
                        help=f"partial phrases kept after each bar (default {defaults.BEAM_WIDTH})")
    search.add_argument("--candidates", type=int, default=defaults.CANDIDATES_PER_BEAM, metavar="M",
                        help=f"candidate bars asked for per beam (default {defaults.CANDIDATES_PER_BEAM})")
    search.add_argument("--seed", type=int, default=defaults.SEARCH_SEED, metavar="S",
                        help=f"random seed; the same seed gives the same result (default {defaults.SEARCH_SEED})")
    search.add_argument("--start", metavar="FILE", help="continue this piece (any input format); its bars count toward --bars")
    search.add_argument("--form", metavar="LETTERS", help="sections such as AABA: a repeated letter reuses or varies its section")
    search.add_argument("--window-bars", type=int, default=defaults.WINDOW_BARS, metavar="W",
                        help=f"bars in each window that must be GOOD (default {defaults.WINDOW_BARS})")
    search.add_argument("--beats-per-bar", type=int, default=defaults.BEATS_PER_BAR, metavar="N",
                        help=f"quarter-note beats per bar (default {defaults.BEATS_PER_BAR})")
    search.add_argument("--max-evaluations", type=int, default=defaults.SEARCH_MAX_EVALUATIONS, metavar="N",
                        help=f"stop after scoring this many windows (default {defaults.SEARCH_MAX_EVALUATIONS})")
    search.add_argument("--max-seconds", type=float, default=defaults.SEARCH_MAX_SECONDS, metavar="S",
                        help=f"stop after this long (default {defaults.SEARCH_MAX_SECONDS:g})")
    search.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="the local server's array backend (default auto)")
    search.set_defaults(handler=_search)
    return parser


# --- handlers: one library call each, then print ----------------------------------------------------


def _score(args: argparse.Namespace) -> int:
    if args.server:
        if args.library:
            raise ParameterError("--library and --server cannot be combined: the server scores with its own library")
        from .client import Client, RemoteScorer  # noqa: PLC0415  (imports grpc)

        scorer = RemoteScorer(Client(args.server, tls_ca=args.tls_ca))
    else:
        scorer = Scorer(Library.open(args.library), backend=args.backend, progress=_progress)
    failed, scored = False, 0
    for result in score_files(
        args.files,
        scorer,
        window_beats=args.window,
        hop_beats=args.hop,
        tracks=args.track,
        transpose_range=args.transpose,
        stretches=args.stretches,
        good_threshold=args.good_threshold,
        bad_threshold=args.bad_threshold,
        progress=_progress,
    ):
        _progress("")
        failed |= result.error is not None
        scored += result.error is None
        print(json.dumps(result.to_dict()) if args.json else _score_line(result), flush=True)
    print(f"rollmatch: scored with the {scorer.engine} ({scored} result{'' if scored == 1 else 's'})", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from .server.app import ServerConfig, serve  # noqa: PLC0415  (imports grpc)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    config = ServerConfig(
        library=Path(args.library) if args.library else None,
        host=args.host,
        port=args.port,
        curator_token=args.curator_token or None,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        backend=args.backend,
        batch_max_fragments=args.batch_max,
        batch_max_wait_ms=args.batch_wait_ms,
        grace_s=args.grace,
    )
    asyncio.run(serve(config, ready=lambda port: print(f"listening on {args.host}:{port}", flush=True)))
    return EXIT_OK


def _library_init(args: argparse.Namespace) -> int:
    library = Library.init(args.dir, name=args.name)
    print(f"created library {library.config.name!r} in {library.path}")
    return EXIT_OK


def _library_add(args: argparse.Namespace) -> int:
    library = Library.open(args.dir).add(
        args.file,
        label=args.label,
        exemplar_id=args.id,
        start_beat=args.start,
        end_beat=args.end,
        tracks=args.track,
        threshold=args.threshold,
        tags=args.tag,
        description=args.description,
        provenance=args.provenance,
    )
    added = library.exemplars[-1]
    print(f"added {added.label.value} exemplar {added.id!r} ({added.file}); library version {library.version}")
    return EXIT_OK


def _library_remove(args: argparse.Namespace) -> int:
    library = Library.open(args.dir).remove(args.id)
    print(f"removed exemplar {args.id!r}; library version {library.version}")
    return EXIT_OK


def _library_list(args: argparse.Namespace) -> int:
    library = Library.open(args.dir)
    if args.json:
        for exemplar in library.exemplars:
            print(json.dumps(exemplar.to_dict()))
        return EXIT_OK
    config = library.config
    print(f"{config.name}: {len(library.exemplars)} exemplars, version {library.version}, "
          f"thresholds good {config.good_threshold:g} / bad {config.bad_threshold:g}")
    for e in library.exemplars:
        beats = f"{e.start_beat or 0:g}-{'end' if e.end_beat is None else f'{e.end_beat:g}'}"
        extra = f"  threshold {e.threshold:g}" if e.threshold is not None else ""
        print(f"  {e.id:<28} {e.label.value:<4}  {e.file}  beats {beats}{extra}  {' '.join(e.tags)}")
    return EXIT_OK


def _search(args: argparse.Namespace) -> int:
    if args.server is None and args.tls_ca:
        raise ParameterError("--tls-ca needs --server")
    from .search import report_path, run_search  # noqa: PLC0415  (imports grpc)

    result = run_search(
        args.output,
        server=args.server,
        tls_ca=args.tls_ca,
        library=args.library,
        generator=args.generator,
        start=args.start,
        backend=args.backend,
        beats_per_bar=args.beats_per_bar,
        progress=_progress,
        bars=args.bars,
        window_bars=args.window_bars,
        beam=args.beam,
        candidates=args.candidates,
        seed=args.seed,
        form=args.form,
        max_evaluations=args.max_evaluations,
        max_seconds=args.max_seconds,
    )
    print(f"wrote {args.output} ({result.bars} bars; {result.good_windows} of {len(result.windows)} windows GOOD) and {report_path(args.output)}; "
          f"{result.evaluations} evaluations, {result.dead_ends} dead ends, {result.backtracks} backtracks, {result.seconds:.1f} s")
    if not result.complete:
        print(f"rollmatch: error: the {result.stopped} ran out at {result.bars} of {args.bars} bars; "
              "the file holds the best phrase found so far", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --- printing ------------------------------------------------------------------------------------------


def _fraction(value: float) -> str:
    return str(Fraction(value).limit_denominator(64))


def _match_text(match: Match | None) -> str:
    if match is None:
        return "-"
    return (f"{match.exemplar} {match.similarity:.3f} (t{match.transpose:+d}, "
            f"beat {match.shift_beats:g}, x{_fraction(match.stretch)})")


def _score_line(result: FileResult) -> str:
    where = result.file if result.start_beat is None else f"{result.file} [{result.start_beat:g}-{result.end_beat:g})"
    if result.verdict is None:
        return f"{where}  ERROR  {result.error}"
    v = result.verdict
    return f"{where}  {v.verdict.value:<9}  score {v.score:.3f}  good: {_match_text(v.good)}  bad: {_match_text(v.bad)}"


def _progress(message: str) -> None:
    """Progress on stderr, only for a person watching a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{message}\x1b[K" if message else "\r\x1b[K")
        sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # usage errors, --help and --version
        return int(done.code or 0)
    try:
        return args.handler(args)
    except RollmatchError as error:
        _progress("")
        print(f"rollmatch: error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        _progress("")
        print("rollmatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: still one line, with a way to see more
        if os.environ.get("ROLLMATCH_DEBUG"):
            raise
        print(f"rollmatch: internal error: {type(error).__name__}: {error} (set ROLLMATCH_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL
