"""The ``rollmatch`` command line: parse arguments, make one library call, print.

Exit codes: 0 success, 1 something could not be read or scored, 2 a usage error, 3 an internal error,
130 interrupted. Errors are one line on stderr, never a traceback (set ROLLMATCH_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import NoReturn

from . import __version__, defaults
from .backend import BACKENDS, DEFAULT_BACKEND
from .bars import BarRange, parse_bar_range
from .calibrate import calibrate, report_lines
from .draw import Picture, explanation_picture, roll_picture
from .engine import Mode, SearchSpace
from .errors import ParameterError, RollmatchError
from .inspection import explain_file, explanation_lines, summarize_exemplar, summary_lines, timeline_file
from .library import Library
from .lint import check_directory, check_library
from .manifest import ExemplarSpec
from .progress import ON_A_TERMINAL, write_line
from .readers import FORMATS, music_files
from .report import library_report
from .scoring import Critic, FileResult, Scorer, score_files
from .storage import write_output
from .verdict import Label, Match, Thresholds, fraction_text, percent_text

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


def _bar_range(text: str) -> BarRange:
    try:
        return parse_bar_range(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    _add_judging_options(score)
    score.add_argument("--server", metavar="HOST:PORT", help="score through a running rollmatch server")
    score.add_argument("--tls-ca", metavar="PEM", help="with --server: trust this certificate for TLS")
    score.add_argument(
        "--png", metavar="OUT.png", help="with --window and one file: draw the window scores under its piano roll"
    )
    _add_beats_per_bar(score)
    score.set_defaults(handler=_score)

    serve = commands.add_parser("serve", help="serve scoring and curation over gRPC")
    serve.add_argument("--library", metavar="DIR", help="exemplar library (default: the shipped exemplars/)")
    serve.add_argument(
        "--host", default=defaults.SERVER_HOST, help=f"address to listen on (default {defaults.SERVER_HOST})"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=defaults.SERVER_PORT,
        help=f"port, 0 for any free one (default {defaults.SERVER_PORT})",
    )
    serve.add_argument(
        "--curator-token",
        default=os.environ.get(defaults.CURATOR_TOKEN_ENV),
        help=f"token for the curation calls (default ${defaults.CURATOR_TOKEN_ENV}; none disables them)",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="and this private key")
    serve.add_argument(
        "--batch-max",
        type=int,
        default=defaults.BATCH_MAX_FRAGMENTS,
        metavar="N",
        help=f"close a batch at N fragments (default {defaults.BATCH_MAX_FRAGMENTS})",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=defaults.BATCH_MAX_WAIT_MS,
        metavar="MS",
        help=f"or MS milliseconds after its first request (default {defaults.BATCH_MAX_WAIT_MS:g})",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=defaults.SHUTDOWN_GRACE_S,
        metavar="SECONDS",
        help=f"time calls in flight get after SIGTERM (default {defaults.SHUTDOWN_GRACE_S:g})",
    )
    serve.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="array backend (default auto)")
    serve.add_argument(
        "--library-poll",
        type=float,
        default=defaults.LIBRARY_POLL_S,
        metavar="SECONDS",
        help=(
            f"check the library for changes by other writers this often; 0: never (default {defaults.LIBRARY_POLL_S:g})"
        ),
    )
    serve.set_defaults(handler=_serve)

    library = commands.add_parser("library", help="create and curate exemplar libraries")
    actions = library.add_subparsers(dest="action", required=True, parser_class=_Parser)
    init = actions.add_parser("init", help="create an empty library")
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--name", help="library name (default: the directory's)")
    init.set_defaults(handler=_library_init)

    add = actions.add_parser("add", help="add files (or parts of them) as exemplars, each its own")
    add.add_argument("dir", metavar="DIR")
    add.add_argument(
        "files",
        nargs="+",
        metavar="FILE|FOLDER",
        help=f"music files; a folder adds the files directly inside it ({' '.join(sorted(FORMATS))})",
    )
    add.add_argument("--label", required=True, choices=[label.value for label in Label])
    add.add_argument("--id", help="exemplar id, with one file only (default: from the file name)")
    add.add_argument("--start", type=float, metavar="BEAT", help="first beat to take")
    add.add_argument("--end", type=float, metavar="BEAT", help="beat to stop before")
    add.add_argument(
        "--bars",
        type=_bar_range,
        metavar="A-B",
        help="take bars A to B (or bar A), counted from 1, a pickup being bar 0; instead of --start/--end",
    )
    add.add_argument("--track", type=_track, action="append", metavar="N|NAME", help="only these tracks/parts")
    add.add_argument("--threshold", type=float, help="this exemplar's own similarity threshold")
    _add_mode(add)
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

    cut = actions.add_parser("slice", help="cut a piece into consecutive exemplars of N bars")
    cut.add_argument("dir", metavar="DIR")
    cut.add_argument("file", metavar="FILE")
    cut.add_argument("--bars-per-exemplar", type=int, required=True, metavar="N", help="bars in each exemplar")
    cut.add_argument("--label", required=True, choices=[label.value for label in Label])
    cut.add_argument("--track", type=_track, action="append", metavar="N|NAME", help="only these tracks/parts")
    cut.add_argument("--threshold", type=float, help="the exemplars' own similarity threshold")
    _add_mode(cut)
    cut.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    cut.add_argument("--description", default="", help="what these exemplars show")
    cut.add_argument("--provenance", help="where they come from (default: the file name and bars)")
    cut.set_defaults(handler=_library_slice)

    thresholds = actions.add_parser("thresholds", help="show or set the library-wide thresholds and coverage")
    thresholds.add_argument("dir", metavar="DIR")
    thresholds.add_argument("--good", type=float, metavar="X", help="new good threshold")
    thresholds.add_argument("--bad", type=float, metavar="Y", help="new bad threshold")
    thresholds.add_argument(
        "--min-coverage", type=float, metavar="C", help="new share of a fragment a good match must cover for GOOD, 0-1"
    )
    thresholds.set_defaults(handler=_library_thresholds)

    check = actions.add_parser("check", help="lint a library: broken files, veto conflicts, near duplicates, ...")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("--json", action="store_true", help="one JSON object per finding")
    check.set_defaults(handler=_library_check)

    calibrate = actions.add_parser("calibrate", help="choose the thresholds from labeled fragments by cross-validation")
    calibrate.add_argument("dir", metavar="DIR")
    calibrate.add_argument(
        "labeled",
        metavar="LABELED",
        help="a folder with good/, bad/ and optionally other/ folders, or a CSV of file,label (good, bad or other)",
    )
    calibrate.add_argument(
        "--folds",
        type=int,
        default=defaults.CALIBRATION_FOLDS,
        metavar="K",
        help=f"cross-validation folds (default {defaults.CALIBRATION_FOLDS})",
    )
    calibrate.add_argument("--write", action="store_true", help="write the chosen thresholds to the manifest")
    calibrate.set_defaults(handler=_library_calibrate)

    show = actions.add_parser("show", help="summarize an exemplar's notes, and draw its piano roll")
    show.add_argument("dir", metavar="DIR")
    show.add_argument("id", metavar="ID")
    show.add_argument("--png", metavar="OUT.png", help="draw its piano roll into this PNG file")
    _add_beats_per_bar(show)
    show.set_defaults(handler=_library_show)

    report = actions.add_parser(
        "report", help="write one self-contained HTML page showing every exemplar and the lint findings"
    )
    report.add_argument("dir", metavar="DIR")
    report.add_argument("-o", "--output", required=True, metavar="OUT.html", help="the HTML file to write")
    _add_beats_per_bar(report)
    report.set_defaults(handler=_library_report)

    explain = commands.add_parser("explain", help="say why a fragment gets its verdict, and draw the matches over it")
    explain.add_argument("fragment", metavar="FRAGMENT", help="MIDI, MusicXML, kern, ABC or JSON note list")
    explain.add_argument("--library", metavar="DIR", help="exemplar library (default: the shipped exemplars/)")
    _add_judging_options(explain)
    explain.add_argument(
        "--png", metavar="OUT.png", help="draw the fragment with its best good and best bad exemplar laid over it"
    )
    _add_beats_per_bar(explain)
    explain.set_defaults(handler=_explain)

    search = commands.add_parser(
        "search", help="grow a phrase bar by bar, every window GOOD, scored here or through a server"
    )
    search.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE.mid|FILE.musicxml",
        help="MIDI or MusicXML file to write (MusicXML gets the MIDI file beside it); the JSON report goes beside it",
    )
    search.add_argument(
        "--bars",
        type=int,
        default=defaults.SEARCH_BARS,
        metavar="N",
        help=f"length of the result in bars, the start included (default {defaults.SEARCH_BARS})",
    )
    search.add_argument("--server", metavar="HOST:PORT", help="score through this server (default: in this process)")
    search.add_argument("--tls-ca", metavar="PEM", help="with --server: trust this certificate for TLS")
    search.add_argument(
        "--library",
        metavar="DIR",
        help="library the generator draws on, and the search scores with here (default: the shipped exemplars/)",
    )
    search.add_argument(
        "--generator",
        default=defaults.GENERATOR,
        metavar="NAME|MODULE:FUNCTION",
        help=f"variation, markov, random-walk, module:function or file.py:function (default {defaults.GENERATOR})",
    )
    search.add_argument(
        "--beam",
        type=int,
        default=defaults.BEAM_WIDTH,
        metavar="B",
        help=f"partial phrases kept after each bar (default {defaults.BEAM_WIDTH})",
    )
    search.add_argument(
        "--candidates",
        type=int,
        default=defaults.CANDIDATES_PER_BEAM,
        metavar="M",
        help=f"candidate bars asked for per beam (default {defaults.CANDIDATES_PER_BEAM})",
    )
    search.add_argument(
        "--seed",
        type=int,
        default=defaults.SEARCH_SEED,
        metavar="S",
        help=f"random seed; the same seed gives the same result (default {defaults.SEARCH_SEED})",
    )
    search.add_argument(
        "--start", metavar="FILE", help="continue this piece (any input format); its bars count toward --bars"
    )
    search.add_argument(
        "--regenerate",
        metavar="BARS",
        help="with --start: replace these bars of it (from 1, e.g. 5-6), keeping the rest",
    )
    search.add_argument(
        "--max-copy",
        type=float,
        default=defaults.MAX_COPY,
        metavar="X",
        help=(
            "no window may match one good exemplar at X or more; "
            f"1 turns the ceiling off (default {defaults.MAX_COPY:g})"
        ),
    )
    search.add_argument(
        "--max-copy-beats",
        type=float,
        default=defaults.MAX_COPY_BEATS,
        metavar="B",
        help="no stretch longer than B beats may match one good exemplar at --max-copy or more (default: off)",
    )
    search.add_argument(
        "--max-reuse",
        type=float,
        default=defaults.MAX_REUSE,
        metavar="F",
        help=f"no good exemplar may explain more than this share of the windows (default {defaults.MAX_REUSE:g})",
    )
    search.add_argument(
        "--results",
        type=int,
        default=defaults.SEARCH_RESULTS,
        metavar="N",
        help=f"distinct results to write: OUT, OUT-2, ... (default {defaults.SEARCH_RESULTS})",
    )
    search.add_argument(
        "--range", metavar="LO-HI", help="register every bar stays in, e.g. C2-A5 or 36-81 (default: the library's)"
    )
    search.add_argument(
        "--key",
        metavar="KEY",
        help="key every bar keeps, e.g. 'G major' or 'e minor' (default: the --start's, else none)",
    )
    search.add_argument(
        "--tempo",
        type=float,
        default=defaults.MIDI_TEMPO_BPM,
        metavar="BPM",
        help=f"tempo written to the MIDI and MusicXML files (default {defaults.MIDI_TEMPO_BPM:g})",
    )
    search.add_argument(
        "--form", metavar="LETTERS", help="sections such as AABA: a repeated letter reuses or varies its section"
    )
    search.add_argument(
        "--window-bars",
        type=int,
        default=defaults.WINDOW_BARS,
        metavar="W",
        help=f"bars in each window that must be GOOD (default {defaults.WINDOW_BARS})",
    )
    search.add_argument(
        "--min-coverage",
        type=float,
        metavar="C",
        help="share of each window a good match must cover (default: the library's)",
    )
    search.add_argument(
        "--beats-per-bar",
        type=int,
        default=defaults.BEATS_PER_BAR,
        metavar="N",
        help=f"quarter-note beats per bar (default {defaults.BEATS_PER_BAR})",
    )
    search.add_argument(
        "--max-evaluations",
        type=int,
        default=defaults.SEARCH_MAX_EVALUATIONS,
        metavar="N",
        help=f"stop after scoring this many windows (default {defaults.SEARCH_MAX_EVALUATIONS})",
    )
    search.add_argument(
        "--max-seconds",
        type=float,
        default=defaults.SEARCH_MAX_SECONDS,
        metavar="S",
        help=f"stop after this long (default {defaults.SEARCH_MAX_SECONDS:g})",
    )
    search.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="the array backend of the scoring here (default auto)",
    )
    search.set_defaults(handler=_search)
    return parser


def _add_judging_options(parser: argparse.ArgumentParser) -> None:
    """The options that decide a verdict, shared by the commands that judge fragments."""
    parser.add_argument(
        "--transpose",
        type=int,
        metavar="R",
        help=f"search transpositions -R..+R semitones (default {defaults.TRANSPOSE_RANGE})",
    )
    parser.add_argument(
        "--stretches",
        type=_stretch_list,
        metavar="LIST",
        help="time-stretch factors, e.g. 1/2,1,2 (default 1/2,2/3,3/4,1,4/3,3/2,2)",
    )
    parser.add_argument("--good-threshold", type=float, metavar="X", help="replace the library's good threshold")
    parser.add_argument("--bad-threshold", type=float, metavar="Y", help="replace the library's bad threshold")
    parser.add_argument(
        "--min-coverage",
        type=float,
        metavar="C",
        help="replace the library's share of a fragment a good match must cover for GOOD, 0-1",
    )
    parser.add_argument("--track", type=_track, action="append", metavar="N|NAME", help="only these tracks/parts")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="array backend (default auto)")


def _space(space: SearchSpace, args: argparse.Namespace) -> SearchSpace:
    """The scorer's search space with the judging options given on the command line."""
    return space.overridden(stretches=args.stretches, transpose_range=args.transpose)


def _thresholds(thresholds: Thresholds, args: argparse.Namespace) -> Thresholds:
    """The scorer's thresholds with the judging options given on the command line."""
    return thresholds.overridden(good=args.good_threshold, bad=args.bad_threshold, min_coverage=args.min_coverage)


def _add_mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        help="near-copy: a close copy in texture and register; contains: its notes are present, "
        "others may sound around them (default: the library's)",
    )


def _add_beats_per_bar(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--beats-per-bar",
        type=float,
        metavar="B",
        help=f"draw bar lines every B beats (default: the file's time signatures, else {defaults.BEATS_PER_BAR:g})",
    )


# --- handlers: one library call each, then print ----------------------------------------------------


def _score(args: argparse.Namespace) -> int:
    if args.png is not None and args.window is None:
        raise ParameterError("--png draws the window scores under the piano roll and needs --window BEATS")
    if args.png is not None and len(args.files) != 1:
        raise ParameterError(f"--png draws one file's timeline, but {len(args.files)} files were given")
    scorer: Critic
    if args.server:
        if args.library:
            raise ParameterError("--library and --server cannot be combined: the server scores with its own library")
        from .client import Client, RemoteScorer  # noqa: PLC0415  (imports grpc)

        scorer = RemoteScorer(Client(args.server, tls_ca=args.tls_ca))
    else:
        scorer = Scorer(Library.open(args.library), backend=args.backend, progress=ON_A_TERMINAL)
    failed, scored, results = False, 0, []
    for result in score_files(
        args.files,
        scorer,
        window_beats=args.window,
        hop_beats=args.hop,
        tracks=args.track,
        space=_space(scorer.space, args),
        thresholds=(thresholds := _thresholds(scorer.thresholds, args)),
        progress=ON_A_TERMINAL,
    ):
        failed |= result.error is not None
        scored += result.error is None
        results.append(result)
        write_line(json.dumps(result.to_dict()) if args.json else _score_line(result))
    print(f"rollmatch: scored with the {scorer.engine} ({scored} result{'' if scored == 1 else 's'})", file=sys.stderr)
    if args.png is not None and not failed:
        picture = timeline_file(
            args.files[0],
            results,
            thresholds=thresholds,
            tracks=args.track,
            beats_per_bar=args.beats_per_bar,
        )
        _write_picture(args.png, picture, "the window timeline")
    return EXIT_FAILED if failed else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
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
        library_poll_s=args.library_poll,
    )
    asyncio.run(serve(config, ready=lambda port: print(f"listening on {args.host}:{port}", flush=True)))
    return EXIT_OK


def _library_init(args: argparse.Namespace) -> int:
    library = Library.init(args.dir, name=args.name)
    print(f"created library {library.config.name!r} in {library.path}")
    return EXIT_OK


def _library_add(args: argparse.Namespace) -> int:
    files = music_files(args.files)
    if args.id is not None and len(files) > 1:
        raise ParameterError(
            f"--id names one exemplar, but {len(files)} files were given; leave it out to take ids from the file names"
        )
    spec = ExemplarSpec(
        label=args.label,
        start_beat=args.start,
        end_beat=args.end,
        bars=args.bars,
        tracks=args.track,
        threshold=args.threshold,
        mode=args.mode,
        tags=args.tag,
        description=args.description,
        provenance=args.provenance,
    )
    before = Library.open(args.dir)
    library = before.add_many(files, spec, exemplar_ids=None if args.id is None else [args.id], progress=ON_A_TERMINAL)
    _print_added(before, library)
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
    print(f"{config.name}: {len(library.exemplars)} exemplars, version {library.version}, {_settings_text(library)}")
    for e in library.exemplars:
        beats = e.beat_range
        extra = f"  threshold {e.threshold:g}" if e.threshold is not None else ""
        print(
            f"  {e.id:<28} {e.label.value:<4}  {library.mode_of(e).value:<9}  {e.file}  beats {beats}{extra}  "
            f"{' '.join(e.tags)}"
        )
    return EXIT_OK


def _library_slice(args: argparse.Namespace) -> int:
    spec = ExemplarSpec(
        label=args.label,
        tracks=args.track,
        threshold=args.threshold,
        mode=args.mode,
        tags=args.tag,
        description=args.description,
        provenance=args.provenance,
    )
    before = Library.open(args.dir)
    library = before.add_slices(args.file, spec, bars_per_exemplar=args.bars_per_exemplar)
    _print_added(before, library)
    return EXIT_OK


def _library_thresholds(args: argparse.Namespace) -> int:
    library = Library.open(args.dir)
    if args.good is not None or args.bad is not None or args.min_coverage is not None:
        library = library.set_thresholds(good=args.good, bad=args.bad, min_coverage=args.min_coverage)
    print(f"{_settings_text(library)}; library version {library.version}")
    return EXIT_OK


def _library_check(args: argparse.Namespace) -> int:
    findings = check_directory(args.dir, progress=ON_A_TERMINAL)
    for finding in findings:
        print(json.dumps(finding.to_dict()) if args.json else f"{finding.code}: {finding.message}")
    if not args.json:
        count = len(findings)
        print(
            f"{args.dir}: {count} problem{'' if count == 1 else 's'} found"
            if count
            else f"{args.dir}: no problems found"
        )
    return EXIT_FAILED if findings else EXIT_OK


def _library_calibrate(args: argparse.Namespace) -> int:
    library = Library.open(args.dir)
    result = calibrate(library, args.labeled, folds=args.folds, progress=ON_A_TERMINAL)
    print("\n".join(report_lines(result)))
    good, bad = result.chosen
    chosen = f"good_threshold = {good:g}, bad_threshold = {bad:g}"
    for finding in result.new_findings:
        print(f"rollmatch: warning: at the chosen thresholds: {finding.code}: {finding.message}", file=sys.stderr)
    if result.new_findings:
        count = len(result.new_findings)
        print(
            f"not written: {chosen} would give {count} library check finding{'' if count == 1 else 's'} that the "
            f"thresholds in force do not (listed above); 'rollmatch library thresholds' sets them by hand"
        )
        return EXIT_FAILED if args.write else EXIT_OK
    if args.write:
        library = library.set_thresholds(good=good, bad=bad)
        print(f"wrote {chosen} to {library.path}; library version {library.version}")
    else:
        print(f"not written: add --write to set {chosen}")
    return EXIT_OK


def _library_show(args: argparse.Namespace) -> int:
    summary = summarize_exemplar(Library.open(args.dir), args.id, beats_per_bar=args.beats_per_bar)
    print("\n".join(summary_lines(summary)))
    if args.png is not None:
        _write_picture(args.png, roll_picture(summary.notes, bars=summary.bars, title=summary.title), "its piano roll")
    return EXIT_OK


def _library_report(args: argparse.Namespace) -> int:
    library = Library.open(args.dir)
    findings = check_library(library)
    page = library_report(library, findings, beats_per_bar=args.beats_per_bar, progress=ON_A_TERMINAL)
    write_output(args.output, page.encode("utf-8"))
    count = len(library.exemplars)
    print(
        f"wrote {args.output}: {count} exemplar{'' if count == 1 else 's'}, {len(findings)} "
        f"finding{'' if len(findings) == 1 else 's'}"
    )
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    scorer = Scorer(Library.open(args.library), backend=args.backend, progress=ON_A_TERMINAL)
    explanation = explain_file(
        args.fragment,
        scorer,
        tracks=args.track,
        beats_per_bar=args.beats_per_bar,
        space=_space(scorer.space, args),
        thresholds=_thresholds(scorer.thresholds, args),
    )
    print("\n".join(explanation_lines(explanation)))
    if args.png is not None:
        _write_picture(args.png, explanation_picture(explanation), "the fragment with its matches")
    return EXIT_OK


def _write_picture(path: str, picture: Picture, what: str) -> None:
    write_output(path, picture.png)
    print(f"rollmatch: drew {what} in {path} ({picture.width}x{picture.height})", file=sys.stderr)


def _search(args: argparse.Namespace) -> int:
    if args.server is None and args.tls_ca:
        raise ParameterError("--tls-ca needs --server")
    from .search import Novelty, SearchSettings, report_path, result_paths, run_search  # noqa: PLC0415  (generators)

    settings = SearchSettings(
        bars=args.bars,
        beats_per_bar=args.beats_per_bar,
        window_bars=args.window_bars,
        min_coverage=args.min_coverage,
        beam=args.beam,
        candidates=args.candidates,
        seed=args.seed,
        form=args.form,
        novelty=Novelty(args.max_copy, args.max_copy_beats, args.max_reuse),
        max_evaluations=args.max_evaluations,
        max_seconds=args.max_seconds,
    )
    results = run_search(
        args.output,
        settings,
        server=args.server,
        tls_ca=args.tls_ca,
        library=args.library,
        generator=args.generator,
        start=args.start,
        regenerate=args.regenerate,
        key=args.key,
        register=args.range,
        results=args.results,
        tempo_bpm=args.tempo,
        backend=args.backend,
        progress=ON_A_TERMINAL,
    )
    status = EXIT_OK
    for result, path in zip(results, result_paths(Path(args.output), len(results)), strict=True):
        novelty = result.to_dict()["novelty"]
        print(
            f"wrote {path} ({result.bars} bars; {result.good_windows} of {len(result.windows)} windows GOOD; "
            f"nearest exemplar {1 - novelty['lowest']:.3f} at most, "
            f"{result.diversity['distinct_exemplars']} exemplars) and {report_path(path)}; "
            f"{result.evaluations} evaluations, {result.dead_ends} dead ends, {result.backtracks} backtracks, "
            f"{result.seconds:.1f} s"
        )
        if not result.complete:
            reasons = ", ".join(
                f"{count} {reason}" for reason, count in sorted(result.rejected.items(), key=lambda item: -item[1])[:3]
            )
            print(
                f"rollmatch: error: the {result.stopped} ran out at {result.bars} of {result.settings['bars']} bars; "
                f"{path} holds the best phrase found so far, its last windows not all judged; "
                f"candidates were rejected most often as {reasons or 'nothing'}",
                file=sys.stderr,
            )
            status = EXIT_FAILED
    return status


# --- printing ------------------------------------------------------------------------------------------


def _print_added(before: Library, after: Library) -> None:
    """One line per exemplar that ``after`` holds and ``before`` did not, then the new version."""
    known = {e.id for e in before.exemplars}
    added = [e for e in after.exemplars if e.id not in known]
    for e in added:
        beats = "" if e.start_beat is None and e.end_beat is None else f", beats {e.beat_range}"
        mode = "" if e.mode is None else f", {e.mode.value} mode"
        print(f"added {e.label.value} exemplar {e.id!r} ({e.file}{beats}{mode})")
    print(f"{len(added)} exemplar{'' if len(added) == 1 else 's'} added; library version {after.version}")


def _settings_text(library: Library) -> str:
    config = library.config
    return (
        f"thresholds good {config.good_threshold:g} / bad {config.bad_threshold:g}, "
        f"min coverage {config.min_coverage:g}, mode {config.mode.value}"
    )


def _match_text(match: Match | None) -> str:
    if match is None:
        return "-"
    return (
        f"{match.exemplar} {match.similarity:.3f} (t{match.transpose:+d}, "
        f"beat {match.shift_beats:g}, x{fraction_text(match.stretch)}, covers {percent_text(match.coverage)})"
    )


def _score_line(result: FileResult) -> str:
    where = result.file if result.start_beat is None else f"{result.file} [{result.start_beat:g}-{result.end_beat:g})"
    if result.verdict is None:
        return f"{where}  ERROR  {result.error}"
    v = result.verdict
    return f"{where}  {v.outcome.value:<9}  score {v.score:.3f}  good: {_match_text(v.good)}  bad: {_match_text(v.bad)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # usage errors, --help and --version
        return int(done.code or 0)
    try:
        return args.handler(args)
    except RollmatchError as error:
        print(f"rollmatch: error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print("rollmatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: still one line, with a way to see more
        if os.environ.get("ROLLMATCH_DEBUG"):
            raise
        print(
            f"rollmatch: internal error: {type(error).__name__}: {error} (set ROLLMATCH_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
