import collections
import json
import os
import re
import subprocess
import sys

import music21
import numpy as np
import pytest
from PIL import Image
from rollmatch.server.app import BackgroundServer, ServerConfig

from rollmatch import Library, defaults, draw, read_notes, select_beats
from rollmatch.cli import main
from rollmatch.continuity import degenerate

from .conftest import REPO, chorale_path

EXAMPLES = REPO / "examples"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_score_prints_a_table_against_the_default_library(capsys):
    code, out, err = run(capsys, "score", str(EXAMPLES / "bwv18.5-lz-opening.mid"), str(EXAMPLES / "planing.mid"))
    assert code == 0 and err.strip() in (
        f"rollmatch: scored with the cpu engine, {path} path (2 results)" for path in ("sparse", "dense")
    )
    good, vetoed = out.splitlines()
    assert "GOOD" in good and "bwv18.5-w-phrase1 1.000 (t+2, beat 0, x1, covers 100%)" in good
    assert "VETOED" in vetoed and "parallel-fifths-pair 1.000" in vetoed and "x1/2" in vetoed


def test_min_coverage_decides_whether_a_reached_match_counts(capsys):
    two_phrases = str(EXAMPLES / "bwv18.5-lz-two-phrases.mid")
    code, out, _ = run(capsys, "score", two_phrases)
    assert code == 0 and "UNMATCHED" in out and "bwv18.5-w-phrase1 1.000 (t+2, beat 0, x1, covers 49%)" in out
    code, out, _ = run(capsys, "score", "--min-coverage", "0.4", two_phrases)
    assert code == 0 and " GOOD " in out
    code, _, err = run(capsys, "score", "--min-coverage", "1.5", two_phrases)
    assert code == 2 and err == "rollmatch: error: min_coverage=1.5 must be within [0, 1]\n"


def test_library_add_takes_a_mode_and_list_shows_every_mode(tmp_path, capsys):
    lib = tmp_path / "modes"
    assert run(capsys, "library", "init", str(lib))[0] == 0
    pair = REPO / "exemplars" / "bad" / "parallel-fifths-pair.json"
    code, out, _ = run(capsys, "library", "add", str(lib), str(pair), "--label", "bad", "--mode", "contains")
    assert code == 0 and out.startswith(
        "added bad exemplar 'parallel-fifths-pair' (files/parallel-fifths-pair.json, contains mode)"
    )
    assert run(capsys, "library", "add", str(lib), str(EXAMPLES / "planing.mid"), "--label", "bad")[0] == 0
    code, out, _ = run(capsys, "library", "list", str(lib))
    header, first, second = out.splitlines()
    assert code == 0 and header.endswith("min coverage 0.6, mode near-copy")
    assert first.split()[:3] == ["parallel-fifths-pair", "bad", "contains"] and second.split()[:3] == [
        "planing",
        "bad",
        "near-copy",
    ]
    code, out, _ = run(capsys, "library", "show", str(lib), "parallel-fifths-pair")
    assert code == 0 and "  mode         contains (its own)" in out.splitlines()
    code, _, err = run(capsys, "library", "add", str(lib), str(pair), "--label", "bad", "--mode", "exact")
    assert code == 2 and "argument --mode: invalid choice: 'exact'" in err


def test_score_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "score", "--json", str(EXAMPLES / "bwv269-opening.mid"))
    (line,) = out.splitlines()
    result = json.loads(line)
    assert code == 0 and set(result) == {"file", "verdict", "score", "good", "bad", "min_coverage", "nearest"}
    assert result["verdict"] == "UNMATCHED"
    assert (
        set(result["good"])
        == set(result["nearest"])
        == {"exemplar", "similarity", "transpose", "shift_beats", "stretch", "coverage", "threshold"}
    )
    # nothing good counts here, so the reported good match is the most similar one: the nearest
    assert result["nearest"] == result["good"]


def test_score_windows_print_one_line_per_window(capsys):
    code, out, _ = run(capsys, "score", "--json", "--window", "8", "--hop", "4", str(chorale_path("bwv269")))
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(lines) >= 10
    assert [(x["start_beat"], x["end_beat"]) for x in lines[:3]] == [(0, 8), (4, 12), (8, 16)]


def test_options_reach_the_engine(capsys):
    path = str(EXAMPLES / "bwv18.5-lz-opening.mid")
    assert "UNMATCHED" in run(capsys, "score", "--transpose", "1", path)[1]
    assert "GOOD" in run(capsys, "score", "--transpose", "2", "--stretches", "1", path)[1]
    assert "VETOED" in run(capsys, "score", "--bad-threshold", "0.3", path)[1]
    assert "GOOD" in run(capsys, "score", "--good-threshold", "0.5", str(EXAMPLES / "bwv269-opening.mid"))[1]


def test_unreadable_input_is_reported_and_the_rest_scored(tmp_path, capsys):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00")
    bad_pitch = tmp_path / "pitch.json"
    bad_pitch.write_text('[{"pitch": 130, "start": 0, "end": 1}]')
    code, out, _ = run(
        capsys,
        "score",
        "--json",
        str(broken),
        str(EXAMPLES / "planing.mid"),
        str(bad_pitch),
        str(tmp_path / "song.wav"),
    )
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 1
    assert (
        lines[0] == {"file": str(broken), "error": lines[0]["error"]}
        and "not a readable MIDI file" in lines[0]["error"]
    )
    assert lines[1]["verdict"] == "VETOED"
    assert "pitch must be within 0-127" in lines[2]["error"]
    assert "unknown file type '.wav'" in lines[3]["error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "--stretches", "0", "x.mid"], "stretch=0 must be > 0"),
        (["score", "--stretches", "1/0", "x.mid"], "not a comma-separated list"),
        (["score", "--good-threshold", "2", "x.mid"], "good_threshold=2 must be in (0, 1]"),
        (["score", "--window", "nan", "x.mid"], "window_beats=nan must be a finite number"),
        (["score", "--hop", "2", "x.mid"], "hop_beats needs window_beats"),
        (["score", "--transpose", "100", "x.mid"], "transpose_range=100"),
        (["score", "--backend", "tpu", "x.mid"], "invalid choice"),
        (["score"], "the following arguments are required: FILE"),
        (["library", "add", "dir", "f.mid"], "--label"),
        (
            ["score", "--png", "out.png", "x.mid"],
            "--png draws the window scores under the piano roll and needs --window BEATS",
        ),
        (
            ["score", "--window", "8", "--png", "out.png", "a.mid", "b.mid"],
            "--png draws one file's timeline, but 2 files were given",
        ),
        (["library", "report", "dir"], "the following arguments are required: -o/--output"),
        (["explain"], "the following arguments are required: FRAGMENT"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_library_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "score", "--library", str(tmp_path / "nope"), str(EXAMPLES / "planing.mid"))
    assert code == 1 and err.strip() == f"rollmatch: error: {tmp_path / 'nope'}: no such library directory"


def test_library_commands_round_trip(tmp_path, capsys):
    lib = tmp_path / "mine"
    assert run(capsys, "library", "init", str(lib))[0] == 0
    code, out, _ = run(
        capsys,
        "library",
        "add",
        str(lib),
        str(chorale_path("bwv269")),
        "--label",
        "good",
        "--id",
        "bwv269-a",
        "--start",
        "0",
        "--end",
        "12",
        "--track",
        "Soprano",
        "--track",
        "3",
        "--tag",
        "bach",
    )
    assert code == 0 and "added good exemplar 'bwv269-a'" in out
    code, out, _ = run(
        capsys, "library", "add", str(lib), str(EXAMPLES / "planing.mid"), "--label", "bad", "--threshold", "0.6"
    )
    assert code == 0 and "'planing'" in out
    code, out, _ = run(capsys, "library", "list", str(lib), "--json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["id"], r["label"], r["tracks"], r["threshold"]) for r in rows] == [
        ("bwv269-a", "good", ["Soprano", 3], None),
        ("planing", "bad", None, 0.6),
    ]
    code, out, _ = run(capsys, "library", "list", str(lib))
    assert code == 0 and "2 exemplars" in out and "bwv269-a" in out
    code, out, _ = run(capsys, "score", "--library", str(lib), str(EXAMPLES / "planing.mid"))
    assert "VETOED" in out and "planing 1.000" in out
    code, _, err = run(capsys, "library", "add", str(lib), str(EXAMPLES / "planing.mid"), "--label", "bad")
    assert code == 1 and "'planing' already exists" in err
    assert run(capsys, "library", "remove", str(lib), "planing")[0] == 0
    code, _, err = run(capsys, "library", "remove", str(lib), "planing")
    assert code == 1 and "no exemplar with id 'planing'" in err
    code, _, err = run(
        capsys, "library", "add", str(lib), str(chorale_path("bwv269")), "--label", "good", "--id", "x", "--track", "9"
    )
    assert code == 1 and "part 9 does not exist" in err


def test_library_thresholds_shows_and_sets_them(tmp_path, capsys):
    lib = tmp_path / "mine"
    assert run(capsys, "library", "init", str(lib))[0] == 0
    code, out, _ = run(capsys, "library", "thresholds", str(lib))
    settings = f"min coverage {defaults.MIN_COVERAGE:g}, mode near-copy"
    assert code == 0 and out.startswith(
        f"thresholds good {defaults.GOOD_THRESHOLD:g} / bad {defaults.BAD_THRESHOLD:g}, {settings}; library version "
    )
    code, out, _ = run(capsys, "library", "thresholds", str(lib), "--bad", "0.7", "--min-coverage", "0.75")
    assert code == 0 and out.startswith(
        f"thresholds good {defaults.GOOD_THRESHOLD:g} / bad 0.7, min coverage 0.75, mode near-copy; "
    )
    config = Library.open(lib).config
    assert (config.good_threshold, config.bad_threshold, config.min_coverage) == (defaults.GOOD_THRESHOLD, 0.7, 0.75)
    assert out.split()[-1] == Library.open(lib).version
    code, _, err = run(capsys, "library", "thresholds", str(lib), "--good", "1.5")
    assert code == 2 and "good_threshold=1.5 must be in" in err
    code, _, err = run(capsys, "library", "thresholds", str(lib), "--min-coverage", "-0.1")
    assert code == 2 and err == "rollmatch: error: min_coverage=-0.1 must be within [0, 1]\n"


def test_real_entry_point_never_shows_a_traceback(tmp_path):
    bomb = tmp_path / "bomb.mid"
    bomb.write_bytes(
        bytes.fromhex("4d546864000000060000000100014d54726b0000001600ff5103ffffff00903c40ffffff7f803c4000ff2f00")
    )
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    env = {**os.environ, "ROLLMATCH_DEBUG": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "rollmatch", "score", str(bomb), str(empty)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    assert "bomb.mid: track 0 runs past beat 8192" in lines[0] and "empty.mid: file is empty" in lines[1]
    proc = subprocess.run(
        [sys.executable, "-m", "rollmatch", "score", "--stretches", "-1", "x.mid"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == "rollmatch: error: stretch=-1 must be > 0"


# --- library add of many files, bars, slice ---------------------------------------------------------------


def test_library_add_takes_folders_files_and_bars(tmp_path, capsys):
    lib = tmp_path / "mine"
    assert run(capsys, "library", "init", str(lib))[0] == 0
    folder = tmp_path / "picked"
    folder.mkdir()
    for name in ("bwv304", "bwv269"):
        (folder / f"{name}.mxl").write_bytes(chorale_path(name).read_bytes())
    (folder / "README.txt").write_text("not music")
    code, out, _ = run(
        capsys,
        "library",
        "add",
        str(lib),
        str(folder),
        str(chorale_path("bwv27.6")),
        "--label",
        "good",
        "--bars",
        "2-3",
        "--track",
        "Bass",
        "--tag",
        "bass",
    )
    version = Library.open(lib).version
    assert code == 0 and out.splitlines() == [
        "added good exemplar 'bwv269-bars-2-3' (files/bwv269.mxl, beats 4-10)",  # 3/4 after a one-beat pickup
        "added good exemplar 'bwv304-bars-2-3' (files/bwv304.mxl, beats 4-12)",
        "added good exemplar 'bwv27.6-bars-2-3' (files/bwv27.6.mxl, beats 4-12)",
        f"3 exemplars added; library version {version}",
    ]
    assert all(e.tracks == ("Bass",) and e.tags == ("bass",) for e in Library.open(lib).exemplars)
    code, _, err = run(capsys, "library", "add", str(lib), str(folder), "--label", "bad", "--bars", "2-3")
    assert code == 1 and err == (
        f"rollmatch: error: {lib}: exemplars with ids 'bwv269-bars-2-3', 'bwv304-bars-2-3' already exist; "
        "nothing was added\n"
    )
    code, out, _ = run(
        capsys, "library", "add", str(lib), str(folder / "bwv269.mxl"), "--label", "bad", "--bars", "15", "--id", "b15"
    )
    assert code == 0 and out.splitlines()[0] == "added bad exemplar 'b15' (files/bwv269.mxl, beats 43-46)"
    code, _, err = run(
        capsys, "library", "add", str(lib), str(folder / "bwv304.mxl"), "--label", "bad", "--bars", "24-26"
    )
    assert code == 1 and err == "rollmatch: error: bwv304.mxl: bars=24-26: the piece has 25 bars\n"
    assert Library.open(lib).version != version and len(Library.open(lib).exemplars) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id", "x", "{folder}"], "--id names one exemplar, but 2 files were given"),
        (["--bars", "2-3", "--start", "4", "{folder}"], "bars=2-3 and a beat range (start/end) cannot be combined"),
        (["--bars", "3-2", "{folder}"], "bars=3-2 must not end before it starts"),
        (["--bars", "two", "{folder}"], "'two' is not a bar number or range like 5 or 5-8"),
        (["--bars", "-1", "{folder}"], "'-1' is not a bar number or range"),
    ],
)
def test_library_add_usage_errors(tmp_path, capsys, argv, message):
    lib = tmp_path / "mine"
    run(capsys, "library", "init", str(lib))
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("bwv304", "bwv269"):
        (folder / f"{name}.mxl").write_bytes(chorale_path(name).read_bytes())
    manifest = (lib / "rollmatch.toml").read_bytes()
    code, _, err = run(capsys, "library", "add", str(lib), "--label", "good", *(a.format(folder=folder) for a in argv))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert (lib / "rollmatch.toml").read_bytes() == manifest


def test_library_slice_cuts_consecutive_exemplars(tmp_path, capsys):
    lib = tmp_path / "mine"
    run(capsys, "library", "init", str(lib))
    path = str(chorale_path("bwv27.6"))  # 14 bars of 4/4, then 8 of 3/2
    code, out, _ = run(
        capsys,
        "library",
        "slice",
        str(lib),
        path,
        "--bars-per-exemplar",
        "8",
        "--label",
        "good",
        "--track",
        "Soprano 1",
        "--tag",
        "bach",
        "--threshold",
        "0.9",
    )
    assert code == 0 and out.splitlines()[:3] == [
        "added good exemplar 'bwv27.6-bars-1-8' (files/bwv27.6.mxl, beats 0-32)",
        "added good exemplar 'bwv27.6-bars-9-16' (files/bwv27.6.mxl, beats 32-68)",
        "added good exemplar 'bwv27.6-bars-17-22' (files/bwv27.6.mxl, beats 68-104)",  # 6 of 8 bars: kept
    ]
    assert out.splitlines()[3].startswith("3 exemplars added; library version ")
    rows = [json.loads(line) for line in run(capsys, "library", "list", str(lib), "--json")[1].splitlines()]
    assert {(r["tracks"] == ["Soprano 1"], r["threshold"], tuple(r["tags"])) for r in rows} == {(True, 0.9, ("bach",))}
    code, _, err = run(capsys, "library", "slice", str(lib), path, "--bars-per-exemplar", "8", "--label", "bad")
    assert (
        code == 1
        and "'bwv27.6-bars-1-8', 'bwv27.6-bars-9-16', 'bwv27.6-bars-17-22' already exist; nothing was added" in err
    )
    code, _, err = run(capsys, "library", "slice", str(lib), path, "--bars-per-exemplar", "0", "--label", "bad")
    assert code == 2 and "bars_per_exemplar=0 must be a whole number" in err


def test_check_passes_the_default_library(capsys):
    code, out, _ = run(capsys, "library", "check", str(REPO / "exemplars"))
    assert code == 0 and out == f"{REPO / 'exemplars'}: no problems found\n"


def test_check_lists_findings_and_exits_1(tmp_path, capsys):
    lib = tmp_path / "lib"
    assert run(capsys, "library", "init", str(lib))[0] == 0
    (tmp_path / "lone.json").write_text('[{"pitch": 60, "start": 0, "end": 1}]')
    (tmp_path / "gone.json").write_text('[{"pitch": 60, "start": 0, "end": 1}, {"pitch": 64, "start": 1, "end": 2}]')
    for name in ("lone", "gone"):
        assert run(capsys, "library", "add", str(lib), str(tmp_path / f"{name}.json"), "--label", "good")[0] == 0
    (lib / "files" / "gone.json").unlink()
    code, out, _ = run(capsys, "library", "check", str(lib))
    assert code == 1
    missing, single, summary = out.splitlines()
    assert missing.startswith("file-missing: exemplar 'gone': file files/gone.json does not exist")
    assert single.startswith("exemplar-single-note: exemplar 'lone' holds a single note")
    assert summary == f"{lib}: 2 problems found"
    code, out, _ = run(capsys, "library", "check", "--json", str(lib))
    assert code == 1 and [json.loads(line)["code"] for line in out.splitlines()] == [
        "file-missing",
        "exemplar-single-note",
    ]
    assert json.loads(out.splitlines()[0])["exemplars"] == ["gone"]
    code, out, _ = run(capsys, "library", "check", "--json", str(tmp_path / "nowhere"))
    assert code == 1 and json.loads(out)["code"] == "library-unreadable"


def test_calibrate_writes_only_with_write(mis_set_library, labeled_dir, capsys):
    manifest = mis_set_library.path / "rollmatch.toml"
    before = manifest.read_bytes()
    code, out, _ = run(capsys, "library", "calibrate", str(mis_set_library.path), str(labeled_dir), "--folds", "3")
    assert code == 0 and "after (3-fold CV)" in out and manifest.read_bytes() == before
    suggested = out.splitlines()[-1]
    assert suggested.startswith("not written: add --write to set good_threshold = ")
    code, out, _ = run(
        capsys, "library", "calibrate", str(mis_set_library.path), str(labeled_dir), "--folds", "3", "--write"
    )
    assert code == 0 and out.splitlines()[-1].startswith("wrote good_threshold = ")
    config = Library.open(mis_set_library.path).config
    assert suggested.endswith(f"good_threshold = {config.good_threshold:g}, bad_threshold = {config.bad_threshold:g}")
    assert config.good_threshold < 0.99


def test_calibrate_errors_are_one_line(mis_set_library, labeled_dir, tmp_path, capsys):
    code, _, err = run(capsys, "library", "calibrate", str(mis_set_library.path), str(labeled_dir), "--folds", "13")
    assert code == 2 and err == (
        "rollmatch: error: folds=13 needs at least 13 fragments of each kind labeled; "
        "the labeled set has 12 good, 4 bad, 8 other\n"
    )
    code, _, err = run(capsys, "library", "calibrate", str(mis_set_library.path), str(tmp_path / "nowhere"))
    assert code == 1 and err == f"rollmatch: error: {tmp_path / 'nowhere'}: no such file or directory\n"


def png_pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def coloured(image: np.ndarray, colour: str, tolerance: int = 12) -> int:
    return int(np.all(np.abs(image - [int(colour[i : i + 2], 16) for i in (1, 3, 5)]) <= tolerance, axis=-1).sum())


def test_library_show_summarizes_and_draws_an_exemplar(tmp_path, capsys):
    out_png = tmp_path / "roll.png"
    code, out, err = run(capsys, "library", "show", str(REPO / "exemplars"), "bwv165.6-phrase1", "--png", str(out_png))
    assert code == 0
    assert out.splitlines()[0] == "bwv165.6-phrase1  good exemplar"
    assert (
        "pitches G2 (43) to C5 (72)" in out and "8 beats, 3 bars (bars 0-2 of the piece)" in out and "provenance" in out
    )
    image = png_pixels(out_png)
    assert f"drew its piano roll in {out_png} ({image.shape[1]}x{image.shape[0]})" in err
    assert coloured(image, draw.NOTE_COLOUR) > 38 * 50  # 38 notes of at least a quarter beat
    code, _, err = run(capsys, "library", "show", str(REPO / "exemplars"), "nope")
    assert code == 1 and "no exemplar with id 'nope'" in err


def test_explain_prints_why_and_draws_the_matches(tmp_path, capsys):
    out_png = tmp_path / "why.png"
    code, out, _ = run(capsys, "explain", str(EXAMPLES / "planing.mid"), "--png", str(out_png))
    lines = out.splitlines()
    assert code == 0 and lines[0] == "planing.mid: VETOED, score -0.642"
    # the same alignments 'score' reports for this file
    assert "best bad: parallel-fifths-pair (contains), similarity 1.000 (threshold 0.97, reached), coverage 53%" in out
    assert "at t+5, shift 0 beats, stretch x1/2" in out and "at t+7, shift -1 beats, stretch x1" in out
    image = png_pixels(out_png)
    assert coloured(image, draw.NOTE_COLOUR) > 500
    assert coloured(image, draw.GOOD_COLOUR, 40) > 200 and coloured(image, draw.BAD_COLOUR, 40) > 200
    code, out, _ = run(
        capsys, "explain", "--stretches", "1", "--transpose", "1", str(EXAMPLES / "bwv18.5-lz-opening.mid")
    )
    assert code == 0 and "UNMATCHED" in out.splitlines()[0]  # the options reach the verdict


def test_score_window_png_draws_the_timeline(tmp_path, capsys):
    out_png = tmp_path / "timeline.png"
    code, out, err = run(
        capsys, "score", "--window", "8", "--hop", "4", "--png", str(out_png), str(chorale_path("bwv269"))
    )
    assert code == 0 and len(out.splitlines()) >= 10
    image = png_pixels(out_png)
    assert f"drew the window timeline in {out_png} ({image.shape[1]}x{image.shape[0]})" in err
    assert image.shape[0] > draw.MIN_ROLL_HEIGHT_PX + 2 * draw.PANEL_HEIGHT_PX
    assert coloured(image, draw.NOTE_COLOUR) > 1000
    assert coloured(image, draw.UNMATCHED_COLOUR) > 100  # most windows of a held-out chorale are unmatched


def test_library_report_writes_a_page(tmp_path, capsys):
    library = tmp_path / "lib"
    assert run(capsys, "library", "init", str(library))[0] == 0
    assert run(capsys, "library", "add", str(library), str(EXAMPLES / "planing.mid"), "--label", "bad")[0] == 0
    page = tmp_path / "report.html"
    code, out, _ = run(capsys, "library", "report", str(library), "-o", str(page))
    assert code == 0 and re.fullmatch(rf"wrote {re.escape(str(page))}: 1 exemplar, \d+ findings?", out.strip())
    assert page.read_text().count('src="data:image/png;base64,') == 1
    code, _, err = run(capsys, "library", "report", str(library), "-o", str(tmp_path / "no" / "report.html"))
    assert (
        code == 1
        and err.strip()
        == f"rollmatch: error: {tmp_path / 'no' / 'report.html'}: cannot write: No such file or directory"
    )


# --- search ---------------------------------------------------------------------------------------------

VETOED_GENERATOR = """
import numpy as np
from rollmatch import Library
from rollmatch.generators import transpose_bar

_library = Library.open()
FIFTHS = dict(zip((e.id for e in _library.exemplars), _library.notes()))["parallel-fifths-inner"]


def propose(context, rng):
    return [transpose_bar(FIFTHS, int(t)) for t in rng.choice(np.arange(-6, 7), size=context.count, replace=False)]
"""


def check_result_independently(capsys, midi, library):
    """What a search promises, checked from the MIDI file on disk by `rollmatch score` and by hand."""
    code, printed, _ = run(capsys, "score", "--json", "--window", "12", "--hop", "4", str(midi))
    windows = [json.loads(line) for line in printed.splitlines()]
    assert code == 0 and len(windows) == 16
    assert [w["verdict"] for w in windows] == ["GOOD"] * 16
    assert max(w["nearest"]["similarity"] for w in windows) < 0.95  # no window copies one exemplar
    explained = collections.Counter(w["good"]["exemplar"] for w in windows)
    assert max(explained.values()) <= 8 and len(explained) >= 3  # none explains more than half the windows
    good = [n for e, n in zip(library.exemplars, library.notes(), strict=True) if e.label.value == "good"]
    low, high = min(int(n["pitch"].min()) for n in good), max(int(n["pitch"].max()) for n in good)
    notes = read_notes(midi)
    assert low <= notes["pitch"].min() and notes["pitch"].max() <= high
    for bar in range(16):
        inside = select_beats(notes, 4 * bar, 4 * bar + 4)
        assert len(set(inside["pitch"].tolist())) > 1, f"bar {bar + 1} holds one note or one repeated note"
        sounding = {
            frozenset(inside["pitch"][(inside["start"] <= t) & (inside["end"] > t)].tolist()) for t in inside["start"]
        }
        assert len(sounding) > 1, f"bar {bar + 1} is one chord, held or repeated"
        assert degenerate(inside, polyphonic=True) is None  # the probes' families find nothing in any bar
    return windows


@pytest.mark.parametrize("generator", ["variation", "markov"])
def test_a_seeded_16_bar_search_is_new_good_music_by_every_check(tmp_path, capsys, default_library, generator):
    out = tmp_path / f"{generator}.musicxml"
    code, printed, err = run(capsys, "search", "--bars", "16", "--seed", "1", "--generator", generator, "-o", str(out))
    assert code == 0 and "Traceback" not in err
    midi = tmp_path / f"{generator}.mid"
    assert printed.startswith(f"wrote {out} (16 bars; 16 of 16 windows GOOD; nearest exemplar 0.9")
    windows = check_result_independently(capsys, midi, default_library)
    report = json.loads((tmp_path / f"{generator}.json").read_text())
    assert report["complete"] and report["all_windows_good"] and report["midi"] == str(midi)
    assert [(w["verdict"], w["score"], w["good"], w["nearest"]) for w in report["windows"]] == [
        (w["verdict"], w["score"], w["good"], w["nearest"]) for w in windows
    ]
    assert all(round(1 - w["nearest"]["similarity"], 4) == w["novelty"] for w in report["windows"])
    assert all(0 <= w["longest_copy_beats"] <= 12 for w in report["windows"])
    assert report["diversity"]["distinct_exemplars"] == len({w["good"]["exemplar"] for w in windows})
    assert set(report["diversity"]["pitch_class_entropy"]) == {"result", "library"}
    assert all(o["source"] == "generated" and o["sources"] for o in report["bar_origins"])
    assert report["settings"]["max_copy"] == 0.95 and report["settings"]["max_reuse"] == 0.5
    # the MusicXML file: one part per voice, the key, the tempo, 16 numbered bars
    score = music21.converter.parse(out)
    assert [p.partName for p in score.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [m.number for m in score.parts[0].getElementsByClass("Measure")] == list(range(1, 17))
    assert score.flatten().getElementsByClass("MetronomeMark")[0].number == defaults.MIDI_TEMPO_BPM
    assert score.parts[0].getElementsByClass("Measure")[0].keySignature is not None
    assert sorted(
        (int(p.midi), float(n.offset)) for n in score.stripTies().flatten().notes for p in n.pitches
    ) == sorted((int(n["pitch"]), float(n["start"])) for n in read_notes(midi))
    if generator == "markov":  # the same seed gives the same bytes
        again = tmp_path / "again.mid"
        assert run(capsys, "search", "--bars", "16", "--seed", "1", "--generator", generator, "-o", str(again))[0] == 0
        assert again.read_bytes() == midi.read_bytes()


def test_search_through_a_running_server(tmp_path, capsys):
    with BackgroundServer(ServerConfig(library=REPO / "exemplars", port=0, backend="cpu")) as server:
        code, printed, _ = run(
            capsys,
            "search",
            "--server",
            server.target,
            "--bars",
            "6",
            "--max-reuse",
            "1",
            "--form",
            "ABA",
            "--tempo",
            "80",
            "-o",
            str(tmp_path / "aba.mid"),
        )
    assert code == 0 and "(6 bars; 6 of 6 windows GOOD;" in printed
    report = json.loads((tmp_path / "aba.json").read_text())
    assert report["server"] == server.target and report["settings"]["form"] == "ABA" and report["tempo_bpm"] == 80
    assert {o["source"] for o in report["bar_origins"][4:]} <= {"repeat", "variation"}


def test_regenerate_replaces_bars_keeping_the_rest_byte_identical(tmp_path, capsys):
    piece = tmp_path / "piece.mid"
    assert run(capsys, "search", "--bars", "8", "--seed", "2", "-o", str(piece))[0] == 0
    out = tmp_path / "again.mid"
    code, printed, err = run(
        capsys, "search", "--start", str(piece), "--regenerate", "5-6", "--seed", "5", "-o", str(out)
    )
    assert code == 0 and "Traceback" not in err and "(8 bars; 8 of 8 windows GOOD;" in printed
    before, after = read_notes(piece), read_notes(out)
    for kept in ((0, 16), (24, 32)):  # bars 1-4 and 7-8, as beats
        assert select_beats(after, *kept).tobytes() == select_beats(before, *kept).tobytes()
    assert select_beats(after, 16, 24).tobytes() != select_beats(before, 16, 24).tobytes()
    # every window that touches bars 5-6 passes, scored again from the file
    code, printed, _ = run(capsys, "score", "--json", "--window", "12", "--hop", "4", str(out))
    windows = [json.loads(line) for line in printed.splitlines()]
    assert [w["verdict"] for w in windows if w["start_beat"] < 24 and w["end_beat"] > 16] == [
        "GOOD"
    ] * 4  # from bars 3, 4, 5, 6
    report = json.loads((tmp_path / "again.json").read_text())
    assert [o["source"] for o in report["bar_origins"]] == ["kept"] * 4 + ["generated"] * 2 + ["kept"] * 2
    assert report["settings"]["regenerate"] == "5-6" and report["key"]  # the start's key, inferred and kept
    code, _, err = run(capsys, "search", "--start", str(piece), "--regenerate", "8-9", "-o", str(tmp_path / "x.mid"))
    assert (
        code == 2 and err == "rollmatch: error: regenerate=bars 8-9 must lie within the start's 8 bars, first <= last\n"
    )
    code, _, err = run(capsys, "search", "--regenerate", "5-6", "-o", str(tmp_path / "x.mid"))
    assert code == 2 and err == "rollmatch: error: regenerate needs --start: the piece whose bars to replace\n"


def test_results_are_distinct_and_keep_the_key_and_range_asked_for(tmp_path, capsys):
    out = tmp_path / "pair.mid"
    code, printed, err = run(
        capsys,
        "search",
        "--bars",
        "4",
        "--max-reuse",
        "1",
        "--results",
        "2",
        "--key",
        "D major",
        "--range",
        "F2-E5",
        "-o",
        str(out),
    )
    assert code == 0 and "Traceback" not in err and len(printed.splitlines()) == 2
    second = tmp_path / "pair-2.mid"
    first_report, second_report = (json.loads(p.with_suffix(".json").read_text()) for p in (out, second))
    assert read_notes(out).tobytes() != read_notes(second).tobytes()
    assert (
        first_report["others"] == {str(second): second_report["others"][str(out)]}
        and first_report["others"][str(second)] < 0.95
    )
    d_major = {2, 4, 6, 7, 9, 11, 1}
    for path, report in ((out, first_report), (second, second_report)):
        notes = read_notes(path)
        assert report["key"] == "D major" and report["settings"]["continuity"]["range"] == "F2-E5"
        assert 41 <= notes["pitch"].min() and notes["pitch"].max() <= 76
        for bar in range(4):
            inside = select_beats(notes, 4 * bar, 4 * bar + 4)
            length = inside["end"] - inside["start"]
            outside = ~np.isin(inside["pitch"] % 12, sorted(d_major))
            assert length[outside].sum() <= 0.25 * length.sum() + 1e-9  # each bar keeps D major


def test_search_that_finds_nothing_says_what_it_tried(tmp_path, capsys):
    generator = tmp_path / "fifths.py"
    generator.write_text(VETOED_GENERATOR)
    out = tmp_path / "none.mid"
    code, _, err = run(
        capsys,
        "search",
        "--bars",
        "4",
        "--beam",
        "2",
        "--candidates",
        "6",
        "--generator",
        f"{generator}:propose",
        "-o",
        str(out),
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(
        f"rollmatch: error: the search gave up: no candidate survived; generator '{generator}:propose'"
    )
    assert "vetoed most often by parallel-fifths-inner" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["--generator", "lstm"],
            2,
            "generator='lstm' must be a built-in (variation, markov, random-walk) or module:function",
        ),
        (["--generator", "no_such_module_xyz:propose"], 1, "generator module 'no_such_module_xyz' not found"),
        (["--form", "AABA", "--bars", "6"], 2, "bars=6 does not split into the 4 sections of form='AABA'"),
        (["--tls-ca", "ca.pem"], 2, "--tls-ca needs --server"),
        (["--beam", "0"], 2, "beam=0 must be a whole number"),
        (["--max-copy", "1.5"], 2, "max_copy=1.5 must be in (0, 1]"),
        (["--max-reuse", "0"], 2, "max_reuse=0 must be in (0, 1]"),
        (["--results", "0"], 2, "results=0 must be a whole number"),
        (["--range", "C9-C2"], 2, "range='C9-C2' is empty: C9 lies above C2"),
        (["--range", "low-high"], 2, "range='low-high' must be LOW-HIGH"),
        (["--key", "H major"], 2, "key='H major' is not a key"),
        (["--regenerate", "x"], 2, "regenerate='x' must be bar numbers from 1"),
        (["--tempo", "0"], 2, "tempo_bpm=0 must be"),
        (["--tempo", "3"], 2, "tempo_bpm=3 must be"),
    ],
)
def test_search_refuses_bad_options_in_one_line(tmp_path, capsys, argv, code, message):
    got, _, err = run(capsys, "search", "-o", str(tmp_path / "x.mid"), *argv)
    assert got == code and err.startswith(f"rollmatch: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.mid").exists()


def test_search_output_must_be_a_midi_file_in_an_existing_directory(tmp_path, capsys):
    assert run(capsys, "search", "-o", str(tmp_path / "phrase.txt"))[2].startswith(
        f"rollmatch: error: output='{tmp_path / 'phrase.txt'}' must end in .mid"
    )
    code, _, err = run(capsys, "search", "-o", str(tmp_path / "missing" / "phrase.mid"))
    assert code == 1 and err == f"rollmatch: error: {tmp_path / 'missing'}: no such directory for the output\n"


def test_a_note_list_with_an_integer_beyond_any_float_is_a_clear_one_line_error(capsys, tmp_path):
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps([{"pitch": 60, "start": 0, "end": 10**400}]))
    code, out, err = run(capsys, "score", str(hostile))
    assert code == 1 and "internal error" not in out + err
    assert f"{hostile}  ERROR  hostile.json: note 0 field 'end' must be a finite number" in out
