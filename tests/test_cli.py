import json
import os
import subprocess
import sys

import pytest

from rollmatch.cli import main
from rollmatch.server.app import BackgroundServer, ServerConfig

from .conftest import REPO, chorale_path

EXAMPLES = REPO / "examples"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_score_prints_a_table_against_the_default_library(capsys):
    code, out, err = run(capsys, "score", str(EXAMPLES / "bwv18.5-lz-opening.mid"), str(EXAMPLES / "planing.mid"))
    assert code == 0 and err.strip() in (f"rollmatch: scored with the cpu engine, {path} path (2 results)" for path in ("sparse", "dense"))
    good, vetoed = out.splitlines()
    assert "GOOD" in good and "bwv18.5-w-phrase1 1.000 (t+2, beat 0, x1)" in good
    assert "VETOED" in vetoed and "parallel-fifths" in vetoed and "x1/2" in vetoed


def test_score_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "score", "--json", str(EXAMPLES / "bwv269-opening.mid"))
    (line,) = out.splitlines()
    result = json.loads(line)
    assert code == 0 and set(result) == {"file", "verdict", "score", "good", "bad"}
    assert result["verdict"] == "UNMATCHED"
    assert set(result["good"]) == {"exemplar", "similarity", "transpose", "shift_beats", "stretch"}


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
    code, out, _ = run(capsys, "score", "--json", str(broken), str(EXAMPLES / "planing.mid"), str(bad_pitch), str(tmp_path / "song.wav"))
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 1
    assert lines[0] == {"file": str(broken), "error": lines[0]["error"]} and "not a readable MIDI file" in lines[0]["error"]
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
    code, out, _ = run(capsys, "library", "add", str(lib), str(chorale_path("bwv269")), "--label", "good",
                       "--id", "bwv269-a", "--start", "0", "--end", "12", "--track", "Soprano", "--track", "3", "--tag", "bach")
    assert code == 0 and "added good exemplar 'bwv269-a'" in out
    code, out, _ = run(capsys, "library", "add", str(lib), str(EXAMPLES / "planing.mid"), "--label", "bad", "--threshold", "0.6")
    assert code == 0 and "'planing'" in out
    code, out, _ = run(capsys, "library", "list", str(lib), "--json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["id"], r["label"], r["tracks"], r["threshold"]) for r in rows] == [
        ("bwv269-a", "good", ["Soprano", 3], None), ("planing", "bad", None, 0.6)]
    code, out, _ = run(capsys, "library", "list", str(lib))
    assert code == 0 and "2 exemplars" in out and "bwv269-a" in out
    code, out, _ = run(capsys, "score", "--library", str(lib), str(EXAMPLES / "planing.mid"))
    assert "VETOED" in out and "planing 1.000" in out
    code, _, err = run(capsys, "library", "add", str(lib), str(EXAMPLES / "planing.mid"), "--label", "bad")
    assert code == 1 and "'planing' already exists" in err
    assert run(capsys, "library", "remove", str(lib), "planing")[0] == 0
    code, _, err = run(capsys, "library", "remove", str(lib), "planing")
    assert code == 1 and "no exemplar with id 'planing'" in err
    code, _, err = run(capsys, "library", "add", str(lib), str(chorale_path("bwv269")), "--label", "good", "--id", "x", "--track", "9")
    assert code == 1 and "part 9 does not exist" in err


def test_real_entry_point_never_shows_a_traceback(tmp_path):
    bomb = tmp_path / "bomb.mid"
    bomb.write_bytes(bytes.fromhex("4d546864000000060000000100014d54726b00000016"
                                   "00ff5103ffffff00903c40ffffff7f803c4000ff2f00"))
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    env = {**os.environ, "ROLLMATCH_DEBUG": ""}
    proc = subprocess.run([sys.executable, "-m", "rollmatch", "score", str(bomb), str(empty)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    assert "bomb.mid: track 0 runs past beat 8192" in lines[0] and "empty.mid: file is empty" in lines[1]
    proc = subprocess.run([sys.executable, "-m", "rollmatch", "score", "--stretches", "-1", "x.mid"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "rollmatch: error: stretch=-1 must be > 0"


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


def test_search_writes_a_phrase_whose_every_window_score_finds_good(tmp_path, capsys):
    out = tmp_path / "phrase.mid"
    code, printed, err = run(capsys, "search", "--bars", "4", "--beam", "2", "--candidates", "6", "--seed", "3", "-o", str(out))
    assert code == 0 and "Traceback" not in err
    assert printed.startswith(f"wrote {out} (4 bars; 4 of 4 windows GOOD) and {tmp_path / 'phrase.json'}")
    # scored independently, window by window, from the MIDI file on disk
    code, printed, _ = run(capsys, "score", "--json", "--window", "16", "--hop", "4", str(out))
    lines = [json.loads(line) for line in printed.splitlines()]
    assert code == 0 and [x["verdict"] for x in lines] == ["GOOD"] * 4
    assert [(x["start_beat"], x["end_beat"]) for x in lines] == [(0, 16), (4, 20), (8, 24), (12, 28)]
    report = json.loads((tmp_path / "phrase.json").read_text())
    assert report["complete"] and report["all_windows_good"] and report["settings"]["bars"] == 4
    assert report["server"] == "local" and report["library"]["name"] == "rollmatch-default"
    assert [(w["verdict"], w["score"], w["good"]) for w in report["windows"]] == [(x["verdict"], x["score"], x["good"]) for x in lines]
    assert sum(report["exemplars_matched"].values()) == 4 and report["evaluations"] > 0
    assert set(report["seconds"]) == {"total", "generation", "scoring"}


def test_search_through_a_running_server(tmp_path, capsys):
    with BackgroundServer(ServerConfig(library=REPO / "exemplars", port=0, backend="cpu")) as server:
        code, printed, _ = run(capsys, "search", "--server", server.target, "--bars", "3", "--beam", "2", "--candidates", "6",
                               "--form", "ABA", "-o", str(tmp_path / "aba.mid"))
    assert code == 0 and "(3 bars; 3 of 3 windows GOOD)" in printed
    report = json.loads((tmp_path / "aba.json").read_text())
    assert report["server"] == server.target and report["settings"]["form"] == "ABA"
    assert [o["source"] for o in report["bar_origins"]][2] in ("repeat", "variation")


def test_search_that_finds_nothing_says_what_it_tried(tmp_path, capsys):
    generator = tmp_path / "fifths.py"
    generator.write_text(VETOED_GENERATOR)
    out = tmp_path / "none.mid"
    code, _, err = run(capsys, "search", "--bars", "4", "--beam", "2", "--candidates", "6", "--generator", f"{generator}:propose", "-o", str(out))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"rollmatch: error: the search gave up: no candidate survived; generator '{generator}:propose'")
    assert "vetoed most often by parallel-fifths-inner" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--generator", "markov"], 2, "generator='markov' must be a built-in (variation, random-walk) or module:function"),
        (["--generator", "no_such_module_xyz:propose"], 1, "generator module 'no_such_module_xyz' not found"),
        (["--form", "AABA", "--bars", "6"], 2, "bars=6 does not split into the 4 sections of form='AABA'"),
        (["--tls-ca", "ca.pem"], 2, "--tls-ca needs --server"),
        (["--beam", "0"], 2, "beam=0 must be a whole number"),
    ],
)
def test_search_refuses_bad_options_in_one_line(tmp_path, capsys, argv, code, message):
    got, _, err = run(capsys, "search", "-o", str(tmp_path / "x.mid"), *argv)
    assert got == code and err.startswith(f"rollmatch: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.mid").exists()


def test_search_output_must_be_a_midi_file_in_an_existing_directory(tmp_path, capsys):
    assert run(capsys, "search", "-o", str(tmp_path / "phrase.txt"))[2].startswith(f"rollmatch: error: output='{tmp_path / 'phrase.txt'}' must end in .mid")
    code, _, err = run(capsys, "search", "-o", str(tmp_path / "missing" / "phrase.mid"))
    assert code == 1 and err == f"rollmatch: error: {tmp_path / 'missing'}: no such directory for the output\n"
