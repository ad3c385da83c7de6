import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rollmatch import (
    AlreadyExistsError,
    InputError,
    Label,
    Library,
    LibraryError,
    NotFoundError,
    ParameterError,
    Scorer,
    default_library_path,
    defaults,
    make_notes,
    read_notes,
    select_beats,
)
from rollmatch import library as library_module
from rollmatch.cli import main
from rollmatch.engine import Mode
from rollmatch.library import CACHE_DIR
from rollmatch.manifest import MANIFEST_NAME, ExemplarSpec
from rollmatch.storage import atomic_write

from .conftest import REPO, chorale_path, write_midi

WRITER = """
import sys
from pathlib import Path
from rollmatch import ExemplarSpec, Library
directory, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
source = directory.parent / "motif.json"
for i in range(count):
    Library.open(directory).add(source, ExemplarSpec(label="good"), exemplar_id=f"{prefix}{i}")
    print(f"{prefix}{i}", flush=True)
"""


def motif(tmp_path: Path, name: str = "motif.json", pitch: int = 60) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps([{"pitch": pitch, "start": 0, "end": 1}, {"pitch": pitch + 4, "start": 1, "end": 2}]))
    return path


@pytest.fixture
def library(tmp_path) -> Library:
    return Library.init(tmp_path / "lib", name="test")


def test_init_creates_an_empty_library_once(tmp_path, library):
    assert library.exemplars == () and library.config.name == "test"
    assert library.config.good_threshold == defaults.GOOD_THRESHOLD
    with pytest.raises(LibraryError, match="already holds a library"):
        Library.init(tmp_path / "lib")
    with pytest.raises(LibraryError, match="not a rollmatch library"):
        Library.open(tmp_path)
    with pytest.raises(LibraryError, match="no such library directory"):
        Library.open(tmp_path / "nowhere")


def test_add_list_and_remove(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good", tags=["arpeggio"], description='a "C-E" motif'))
    lib = lib.add(
        chorale_path("bwv269"),
        ExemplarSpec(label="bad", start_beat=0, end_beat=8, tracks=["Bass"], threshold=0.9),
        exemplar_id="bwv269-bass",
    )
    assert [e.id for e in lib.exemplars] == ["motif", "bwv269-bass"]
    bass = lib.get("bwv269-bass")
    assert bass.label is Label.BAD and bass.threshold == 0.9 and bass.tracks == ("Bass",)
    assert (lib.path / bass.file).is_file() and bass.file == "files/bwv269.mxl"
    notes = lib.notes()
    assert notes[1].tolist() == read_notes(chorale_path("bwv269"), tracks=["Bass"], end_beat=8).tolist()
    reopened = Library.open(lib.path)
    assert reopened.exemplars == lib.exemplars and reopened.version == lib.version
    assert reopened.get("motif").description == 'a "C-E" motif'
    after = reopened.remove("bwv269-bass")
    assert [e.id for e in after.exemplars] == ["motif"] and not (lib.path / bass.file).exists()
    assert after.version != lib.version


def test_add_refuses_duplicates_and_bad_files_without_writing(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    manifest = (lib.path / MANIFEST_NAME).read_bytes()
    with pytest.raises(AlreadyExistsError, match="'motif' already exists"):
        lib.add(motif(tmp_path), ExemplarSpec(label="bad"))
    (tmp_path / "broken.mid").write_bytes(b"MThd garbage")
    with pytest.raises(Exception, match=r"broken\.mid: not a readable MIDI file"):
        lib.add(tmp_path / "broken.mid", ExemplarSpec(label="good"))
    with pytest.raises(ParameterError, match="label='ugly' must be 'good' or 'bad'"):
        lib.add(motif(tmp_path, "other.json"), ExemplarSpec(label="ugly"))
    with pytest.raises(ParameterError, match="id='no spaces' must be"):
        lib.add(motif(tmp_path, "other.json"), ExemplarSpec(label="good"), exemplar_id="no spaces")
    with pytest.raises(ParameterError, match=r"threshold=1\.5 must be in"):
        lib.add(motif(tmp_path, "other.json"), ExemplarSpec(label="good", threshold=1.5))
    with pytest.raises(ParameterError, match="mode='exact' must be one of near-copy, contains"):
        lib.add(motif(tmp_path, "other.json"), ExemplarSpec(label="bad", mode="exact"))
    assert (lib.path / MANIFEST_NAME).read_bytes() == manifest
    assert sorted(p.name for p in (lib.path / "files").iterdir()) == ["motif.json"]
    with pytest.raises(NotFoundError, match="no exemplar with id 'ghost'"):
        lib.remove("ghost")


def test_same_name_different_content_gets_its_own_file(tmp_path, library):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = motif(tmp_path / "a", pitch=60), motif(tmp_path / "b", pitch=70)
    lib = library.add(first, ExemplarSpec(label="good"), exemplar_id="low").add(
        second, ExemplarSpec(label="good"), exemplar_id="high"
    )
    files = [e.file for e in lib.exemplars]
    assert files[0] == "files/motif.json" and files[1].startswith("files/motif-") and files[1] != files[0]
    assert [n["pitch"].min() for n in lib.notes()] == [60, 70]


def test_file_inside_the_library_is_referenced_in_place(tmp_path, library):
    (library.path / "good").mkdir()
    inside = motif(library.path / "good")
    lib = library.add(inside, ExemplarSpec(label="good"))
    assert lib.exemplars[0].file == "good/motif.json" and not (lib.path / "files").exists()


def test_cache_follows_file_changes(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    assert lib.notes()[0]["pitch"].tolist() == [60, 64]
    assert len(list((lib.path / CACHE_DIR).iterdir())) == 1
    (lib.path / lib.exemplars[0].file).write_text(json.dumps([{"pitch": 72, "start": 0, "end": 2}]))
    changed = Library.open(lib.path)
    assert changed.version != lib.version
    assert changed.notes()[0]["pitch"].tolist() == [72]


def test_corrupt_cache_entry_is_rebuilt(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    (entry,) = (lib.path / CACHE_DIR).iterdir()
    entry.write_bytes(b"\x93NUMPY garbage")
    assert Library.open(lib.path).notes()[0]["pitch"].tolist() == [60, 64]


def test_writes_delete_the_cache_entries_nothing_uses(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good")).add(
        motif(tmp_path, "other.json", pitch=70), ExemplarSpec(label="bad")
    )
    cache = lib.path / CACHE_DIR
    assert len(list(cache.glob("*.npy"))) == 2
    (lib.path / "files/motif.json").write_text(json.dumps([{"pitch": 72, "start": 0, "end": 2}]))  # edited by hand
    assert Library.open(lib.path).notes()[0]["pitch"].tolist() == [72]  # cached beside the old content's entry
    (cache / "0123456789abcdef01234567.npy").write_bytes(b"an entry of an older cache format")
    assert len(list(cache.glob("*.npy"))) == 4
    after = Library.open(lib.path).remove("other")
    (entry,) = cache.glob("*.npy")  # only the edited motif's entry is left
    assert np.load(entry)["pitch"].tolist() == [72] and after.notes()[0]["pitch"].tolist() == [72]


def test_a_snapshot_notices_changes_on_disk_by_stat(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    assert not lib.changed_on_disk() and [name for name, _ in lib.stamps] == [MANIFEST_NAME, "files/motif.json"]
    # another writer
    later = Library.open(lib.path).add(motif(tmp_path, "other.json", pitch=70), ExemplarSpec(label="bad"))
    assert lib.changed_on_disk() and not later.changed_on_disk()
    (lib.path / "files/other.json").write_text(json.dumps([{"pitch": 71, "start": 0, "end": 3}]))  # in place
    assert later.changed_on_disk() and Library.open(lib.path).version != later.version
    current = Library.open(lib.path)
    (lib.path / "files/motif.json").unlink()
    assert current.changed_on_disk()
    current = Library.open(lib.path)
    atomic_write(lib.path / MANIFEST_NAME, (lib.path / MANIFEST_NAME).read_bytes())  # rewritten, same bytes
    assert current.changed_on_disk() and Library.open(lib.path).version == current.version


def test_modes_and_coverage_live_in_the_manifest(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="bad", mode="contains"))
    lib = lib.add(motif(tmp_path, "plain.json"), ExemplarSpec(label="bad")).set_thresholds(min_coverage=0.75)
    text = (lib.path / MANIFEST_NAME).read_text()
    assert 'min_coverage = 0.75\nmode = "near-copy"' in text and text.count('mode = "contains"') == 1
    reopened = Library.open(lib.path)
    contains, plain = reopened.exemplars
    assert (contains.mode, plain.mode) == (Mode.CONTAINS, None)  # the second follows the library
    assert reopened.mode_of(plain) is Mode.NEAR_COPY and reopened.config.min_coverage == 0.75
    # A hand-edited library mode changes every exemplar that names none, and the scorer follows it.
    (lib.path / MANIFEST_NAME).write_text(text.replace('mode = "near-copy"', 'mode = "contains"'))
    assert Scorer(Library.open(lib.path)).modes == (Mode.CONTAINS, Mode.CONTAINS)
    with pytest.raises(ParameterError, match=r"min_coverage=2 must be within \[0, 1\]"):
        reopened.set_thresholds(min_coverage=2)


def test_manifest_text_round_trips_awkward_strings(tmp_path, library):
    text = 'quote " backslash \\ newline \n tab \t unicode \u00e9\u266f del \x7f'
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good", description=text, provenance="bwv \u2116 269"))
    again = Library.open(lib.path).get("motif")
    assert again.description == text and again.provenance == "bwv \u2116 269"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[library]\ncolour = 'red'\n", r"\[library\] has unknown key 'colour'"),
        ("[library]\ngood_threshold = 2.0\n", "good_threshold=2 must be in"),
        ("[library]\nmin_coverage = 1.2\n", r"\[library\] min_coverage=1.2 must be within \[0, 1\]"),
        ("[library]\nmode = 'copy'\n", r"\[library\] mode='copy' must be one of near-copy, contains"),
        (
            "[[exemplar]]\nid = 'a'\nlabel = 'bad'\nfile = 'a.json'\nmode = 3\n",
            "exemplar 1: mode=3 must be one of near-copy, contains",
        ),
        ("[[exemplar]]\nid = 'a'\nlabel = 'meh'\nfile = 'a.json'\n", "exemplar 1: label='meh' must be 'good' or 'bad'"),
        ("[[exemplar]]\nid = 'a'\nlabel = 'good'\n", "exemplar 1 needs a string 'file'"),
        ("[[exemplar]]\nid = 'a'\nlabel = 'good'\nfile = '../x.json'\n", "must be a path inside the library"),
        (
            "[[exemplar]]\nid='a'\nlabel='good'\nfile='a.json'\n[[exemplar]]\nid='a'\nlabel='bad'\nfile='a.json'\n",
            "id 'a' is used twice",
        ),
        ("[library\n", "not valid TOML"),
    ],
)
def test_malformed_manifests_name_the_problem(tmp_path, manifest, message):
    (tmp_path / MANIFEST_NAME).write_text(manifest)
    with pytest.raises(LibraryError, match=message):
        Library.open(tmp_path)


def test_missing_exemplar_file_is_named_when_notes_are_needed(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    (lib.path / "files/motif.json").unlink()
    reopened = Library.open(lib.path)  # listing still works
    with pytest.raises(LibraryError, match=r"exemplar 'motif': cannot read files/motif\.json"):
        reopened.notes()


def test_concurrent_writers_lose_nothing(tmp_path, library):
    motif(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(library.path), f"p{w}-", "8"], stdout=subprocess.PIPE, text=True
        )
        for w in range(4)
    ]
    errors = []

    def threaded(w: int) -> None:
        try:
            for i in range(8):
                Library.open(library.path).add(
                    tmp_path / "motif.json", ExemplarSpec(label="bad"), exemplar_id=f"t{w}-{i}"
                )
        except Exception as exc:  # noqa: BLE001  (collected by the test's thread, asserted empty below)
            errors.append(exc)

    threads = [threading.Thread(target=threaded, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    acknowledged = {line.strip() for p in procs for line in p.communicate(timeout=120)[0].splitlines()}
    for t in threads:
        t.join(timeout=120)
    assert not errors and all(p.returncode == 0 for p in procs)
    ids = {e.id for e in Library.open(library.path).exemplars}
    assert acknowledged == {f"p{w}-{i}" for w in range(4) for i in range(8)}
    assert ids == acknowledged | {f"t{w}-{i}" for w in range(4) for i in range(8)}


def test_kill_9_never_loses_or_tears_an_acknowledged_write(tmp_path, library):
    motif(tmp_path)
    acknowledged: set[str] = set()
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(library.path), f"r{round_}-", "1000"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4 + 3 * round_):
            acknowledged.add(proc.stdout.readline().strip())
        time.sleep(0.01 * round_)  # land the kill at different points of a write
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.communicate()[0]
        acknowledged |= {line.strip() for line in rest.splitlines() if line.strip()}
        ids = {e.id for e in Library.open(library.path).exemplars}  # parses: not torn
        assert acknowledged <= ids
    assert len(acknowledged) >= 4 + 7 + 10


def test_the_default_library_is_the_packaged_one_unless_the_environment_names_another(tmp_path, monkeypatch):
    monkeypatch.delenv(library_module.LIBRARY_ENV, raising=False)
    assert default_library_path() == REPO / "exemplars"  # an editable install: the source tree's folder
    assert Library.open().config.name == "rollmatch-default"
    monkeypatch.setenv(library_module.LIBRARY_ENV, str(tmp_path / "mine"))
    Library.init(tmp_path / "mine", name="mine")
    assert default_library_path() == tmp_path / "mine" and Library.open().config.name == "mine"


def test_default_library_is_complete_and_calibrated(default_library):
    lib = default_library
    labels = [e.label for e in lib.exemplars]
    assert labels.count(Label.GOOD) >= 20 and labels.count(Label.BAD) >= 5
    assert lib.config.good_threshold == defaults.GOOD_THRESHOLD and lib.config.bad_threshold == defaults.BAD_THRESHOLD
    notes = lib.notes()
    assert all(n.size >= 4 for n in notes)
    assert all(e.description and e.provenance for e in lib.exemplars)
    good_voices = [
        len(np.unique(n["pitch"])) for n, e in zip(notes, lib.exemplars, strict=True) if e.label is Label.GOOD
    ]
    assert min(good_voices) >= 6  # real four-voice music, not single lines
    assert (REPO / "exemplars" / MANIFEST_NAME).read_text().count("public domain") == labels.count(Label.GOOD)


# --- importing many files, bars and slices -------------------------------------------------------------------


def _snapshot(lib: Library) -> tuple[bytes, list[str]]:
    """The manifest's bytes and every file name in the library directory, to show that nothing changed."""
    return (lib.path / MANIFEST_NAME).read_bytes(), sorted(
        str(p.relative_to(lib.path)) for p in lib.path.rglob("*") if CACHE_DIR not in p.parts
    )


def test_add_bars_uses_the_files_time_signatures(library):
    # BWV 27.6 turns from 4/4 to 3/2 at bar 15 (beat 56): bars 14-15 are beats 52-62.
    lib = library.add(chorale_path("bwv27.6"), ExemplarSpec(label="good", bars=(14, 15), tracks=["Bass"]))
    (exemplar,) = lib.exemplars
    assert exemplar.id == "bwv27.6-bars-14-15" and (exemplar.start_beat, exemplar.end_beat) == (52, 62)
    assert exemplar.provenance == "added from bwv27.6.mxl, bars 14-15"
    expected = read_notes(chorale_path("bwv27.6"), tracks=["Bass"], start_beat=52, end_beat=62)
    assert Library.open(lib.path).notes()[0].tolist() == expected.tolist()
    single = lib.add(chorale_path("bwv269"), ExemplarSpec(label="good", bars=(0, 0)))  # the pickup alone
    assert single.get("bwv269-bar-0").end_beat == 1
    with pytest.raises(ParameterError, match=r"bars=3 and a beat range .start/end. cannot be combined"):
        lib.add(chorale_path("bwv269"), ExemplarSpec(label="good", bars=(3, 3), start_beat=2))
    before = _snapshot(single)
    with pytest.raises(InputError, match=r"bwv27\.6\.mxl: bars=20-23: the piece has 22 bars"):
        single.add(chorale_path("bwv27.6"), ExemplarSpec(label="good", bars=(20, 23)))
    assert _snapshot(single) == before


def test_add_many_is_one_write_with_ids_from_file_names(library, monkeypatch, capsys):
    sources = [chorale_path(name) for name in ("bwv269", "bwv304", "bwv27.6")]
    manifest_writes = []
    real_write = library_module.atomic_write

    def counting(path: Path, data: bytes) -> None:
        if path.name == MANIFEST_NAME:
            manifest_writes.append(path)
        real_write(path, data)

    monkeypatch.setattr(library_module, "atomic_write", counting)
    spec = ExemplarSpec(label="bad", bars=(1, 2), tracks=["Bass", 0], tags=["cadence"])
    lib = library.add_many(sources, spec, progress=True)
    assert manifest_writes == [lib.path / MANIFEST_NAME]
    assert "reading:" in capsys.readouterr().err  # a tqdm bar on stderr, of the 3 files
    assert [(e.id, e.start_beat, e.end_beat, e.tracks, e.tags) for e in lib.exemplars] == [
        ("bwv269-bars-1-2", 1, 7, ("Bass", 0), ("cadence",)),  # after the one-beat pickup, two 3/4 bars
        ("bwv304-bars-1-2", 0, 8, ("Bass", 0), ("cadence",)),
        ("bwv27.6-bars-1-2", 0, 8, ("Bass", 0), ("cadence",)),
    ]
    for notes, source, exemplar in zip(Library.open(lib.path).notes(), sources, lib.exemplars, strict=True):
        expected = read_notes(source, tracks=["Bass", 0], start_beat=exemplar.start_beat, end_beat=exemplar.end_beat)
        assert notes.tolist() == expected.tolist() and len(np.unique(notes["pitch"])) > 2


def test_add_many_refuses_clashing_ids_before_writing(tmp_path, library):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    lib = library.add(motif(tmp_path / "a", "taken.json"), ExemplarSpec(label="good"))
    before = _snapshot(lib)
    batch = [
        motif(tmp_path / "a", "fresh.json"),
        motif(tmp_path / "a", "twice.json"),
        motif(tmp_path / "b", "twice.json", pitch=70),
        motif(tmp_path / "b", "taken.json"),
    ]
    with pytest.raises(AlreadyExistsError) as refused:
        lib.add_many(batch, ExemplarSpec(label="good"))
    message = str(refused.value)
    assert "an exemplar with id 'taken' already exists" in message and message.endswith("nothing was added")
    assert (
        f"id 'twice' would be given to 2 exemplars ({tmp_path / 'a' / 'twice.json'}, {tmp_path / 'b' / 'twice.json'})"
        in message
    )
    assert "fresh" not in message and _snapshot(lib) == before
    with pytest.raises(AlreadyExistsError, match="exemplars with ids 'fresh', 'taken' already exist"):
        lib.add(batch[0], ExemplarSpec(label="good")).add_many([batch[0], batch[3]], ExemplarSpec(label="bad"))
    with pytest.raises(ParameterError, match="exemplar_ids: 1 ids for 2 files"):
        lib.add_many(batch[:2], ExemplarSpec(label="good"), exemplar_ids=["x"])


def test_a_bad_file_in_the_middle_leaves_the_library_as_it_was(tmp_path, library):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    before = _snapshot(lib)
    (tmp_path / "broken.mid").write_bytes(b"MThd garbage")
    good = write_midi(tmp_path / "good.mid", read_notes(chorale_path("bwv269"), end_beat=8))
    with pytest.raises(InputError, match=r"broken\.mid: not a readable MIDI file.*; nothing was added$"):
        lib.add_many([good, tmp_path / "broken.mid", chorale_path("bwv304")], ExemplarSpec(label="good"))
    assert _snapshot(lib) == before
    with pytest.raises(InputError, match=r"bwv27\.6\.mxl: no part named 'Soprano'; it has parts 0 'Soprano 1'"):
        lib.add_many([chorale_path("bwv269"), chorale_path("bwv27.6")], ExemplarSpec(label="good", tracks=["Soprano"]))
    assert _snapshot(lib) == before


def test_failed_manifest_write_takes_back_the_copied_files(tmp_path, library, monkeypatch):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    before = _snapshot(lib)
    real_write = library_module.atomic_write

    def failing(path: Path, data: bytes) -> None:
        if path.name == MANIFEST_NAME:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(library_module, "atomic_write", failing)
    with pytest.raises(LibraryError, match="cannot write: No space left on device"):
        lib.add_many([chorale_path("bwv269"), chorale_path("bwv304")], ExemplarSpec(label="good"))
    assert _snapshot(lib) == before


def test_slices_cut_a_piece_into_consecutive_bars(library):
    # BWV 269: a one-beat pickup and 21 bars of 3/4 (the last of 2 beats). In fours the pickup joins the first
    # slice and bar 21 alone, shorter than half a slice, joins the last.
    lib = library.add_slices(chorale_path("bwv269"), ExemplarSpec(label="good", tags=["bach"]), bars_per_exemplar=4)
    assert [(e.id, e.start_beat, e.end_beat) for e in lib.exemplars] == [
        ("bwv269-bars-0-4", 0, 13),
        ("bwv269-bars-5-8", 13, 25),
        ("bwv269-bars-9-12", 25, 37),
        ("bwv269-bars-13-16", 37, 49),
        ("bwv269-bars-17-21", 49, 63),
    ]
    assert {e.file for e in lib.exemplars} == {"files/bwv269.mxl"} and all(e.tags == ("bach",) for e in lib.exemplars)
    assert lib.exemplars[1].provenance == "sliced from bwv269.mxl, bars 5-8"
    whole = read_notes(chorale_path("bwv269"))
    for notes, e in zip(Library.open(lib.path).notes(), lib.exemplars, strict=True):
        assert notes.tolist() == select_beats(whole, e.start_beat, e.end_beat).tolist()
    before = _snapshot(lib)
    with pytest.raises(
        AlreadyExistsError, match=r"exemplars with ids 'bwv269-bars-0-4', 'bwv269-bars-5-8', .* already exist"
    ):
        lib.add_slices(chorale_path("bwv269"), ExemplarSpec(label="bad"), bars_per_exemplar=4)
    assert _snapshot(lib) == before
    with pytest.raises(ParameterError, match="bars_per_exemplar=0 must be a whole number"):
        lib.add_slices(chorale_path("bwv269"), ExemplarSpec(label="bad"), bars_per_exemplar=0)


def test_slices_skip_empty_bars(tmp_path, library):
    # Real notes in bars 1-2 and 5-6 of a 4/4 MIDI file, silence in bars 3-4.
    phrase = read_notes(chorale_path("bwv269"), start_beat=1, end_beat=9)
    gap = make_notes(
        np.concatenate([phrase["pitch"]] * 2),
        np.concatenate([phrase["start"], phrase["start"] + 16]),
        np.concatenate([phrase["end"], phrase["end"] + 16]),
    )
    lib = library.add_slices(write_midi(tmp_path / "gap.mid", gap), ExemplarSpec(label="bad"), bars_per_exemplar=2)
    assert [(e.id, e.start_beat, e.end_beat) for e in lib.exemplars] == [
        ("gap-bars-1-2", 0, 8),
        ("gap-bars-5-6", 16, 24),
    ]
    drums = write_midi(tmp_path / "drums.mid", make_notes([], [], []), drums=make_notes([36, 38], [0, 1], [1, 2]))
    with pytest.raises(InputError, match=r"drums.mid: no notes in any bar \(drum tracks are left out\)"):
        lib.add_slices(drums, ExemplarSpec(label="bad"), bars_per_exemplar=2)


def test_a_full_disk_is_a_library_error_and_changes_nothing(library, tmp_path, monkeypatch, capsys):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    before = _snapshot(lib)

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(library_module, "atomic_write", full)
    for change in (
        lambda: lib.add(chorale_path("bwv269"), ExemplarSpec(label="good")),
        lambda: lib.set_thresholds(good=0.9),
        lambda: lib.remove("motif"),
    ):
        with pytest.raises(LibraryError, match=r": cannot write: No space left on device$"):
            change()
        assert _snapshot(Library.open(lib.path)) == before
    assert main(["library", "thresholds", str(lib.path), "--good", "0.9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rollmatch: error: ") and "No space left on device" in err and "internal" not in err


def test_a_removal_written_is_reported_as_done_even_when_its_copied_file_cannot_go(library, tmp_path, monkeypatch):
    lib = library.add(motif(tmp_path), ExemplarSpec(label="good"))
    copied = lib.path / lib.get("motif").file
    real_unlink = Path.unlink

    def refusing(path: Path, missing_ok: bool = False) -> None:
        if path == copied:
            raise PermissionError(13, "Permission denied")
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refusing)
    after = lib.remove("motif")
    assert after.exemplars == () and Library.open(lib.path).exemplars == () and copied.exists()
