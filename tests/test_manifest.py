import shutil

import pytest

from rollmatch import Label, Library, LibraryError, ParameterError
from rollmatch import library as library_module
from rollmatch.cli import main
from rollmatch.engine import Mode
from rollmatch.manifest import (
    MANIFEST_NAME,
    Exemplar,
    ExemplarSpec,
    LibraryConfig,
    render_manifest,
    with_exemplars,
    with_settings,
    without_exemplar,
)

from .conftest import REPO, chorale_path

# A curator's manifest over files of the shipped library: comments at the top, inside [library], above and
# inside an [[exemplar]] table, and after a value.
CURATED = """\
# Chorale phrases for the harmony class; curated by hand, please keep the comments.

[library]
name = "harmony-class"
# raised after the spring calibration
good_threshold = 0.85  # was 0.83
bad_threshold = 0.78

[[exemplar]]
id = "chromatic-run"
label = "bad"
file = "bad/chromatic-run.json"

# The model phrase: what the students should sound like.
[[exemplar]]
id = "bwv101.7-phrase1"
label = "good"
file = "good/bwv101.7.mxl"
# up to the first fermata
start_beat = 0.0
end_beat = 8.0

# Parallel fifths between the outer voices.
[[exemplar]]
id = "parallel-fifths-pair"
label = "bad"
file = "bad/parallel-fifths-pair.json"
mode = "contains"  # vetoes the fault inside any texture
threshold = 0.97
"""

# CURATED after adding bars 1-2 of BWV 66.6, removing chromatic-run, raising the good threshold and setting a
# coverage: the comment above the removed table's successor stays above it, the new key goes after the last.
EDITED = """\
# Chorale phrases for the harmony class; curated by hand, please keep the comments.

[library]
name = "harmony-class"
# raised after the spring calibration
good_threshold = 0.9  # was 0.83
bad_threshold = 0.78
min_coverage = 0.5

# The model phrase: what the students should sound like.
[[exemplar]]
id = "bwv101.7-phrase1"
label = "good"
file = "good/bwv101.7.mxl"
# up to the first fermata
start_beat = 0.0
end_beat = 8.0

# Parallel fifths between the outer voices.
[[exemplar]]
id = "parallel-fifths-pair"
label = "bad"
file = "bad/parallel-fifths-pair.json"
mode = "contains"  # vetoes the fault inside any texture
threshold = 0.97

[[exemplar]]
id = "bwv66.6-bars-1-2"
label = "good"
file = "files/bwv66.6.mxl"
start_beat = 1.0
end_beat = 9.0
tags = ["chorale"]
provenance = "added from bwv66.6.mxl, bars 1-2"
"""


@pytest.fixture
def curated(tmp_path):
    directory = tmp_path / "class"
    for name in ("bad/chromatic-run.json", "good/bwv101.7.mxl", "bad/parallel-fifths-pair.json"):
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "exemplars" / name, directory / name)
    (directory / MANIFEST_NAME).write_text(CURATED)
    return directory


@pytest.mark.parametrize("by", ["api", "cli"])
def test_add_remove_and_thresholds_keep_a_curators_comments_and_order(curated, by, capsys):
    if by == "api":
        library = Library.open(curated).add(
            chorale_path("bwv66.6"), ExemplarSpec(label="good", bars=(1, 2), tags=["chorale"])
        )
        library = library.remove("chromatic-run").set_thresholds(good=0.9, min_coverage=0.5)
    else:
        for args in (
            ["add", str(curated), str(chorale_path("bwv66.6")), "--label", "good", "--bars", "1-2", "--tag", "chorale"],
            ["remove", str(curated), "chromatic-run"],
            ["thresholds", str(curated), "--good", "0.9", "--min-coverage", "0.5"],
        ):
            assert main(["library", *args]) == 0, capsys.readouterr().err
        library = Library.open(curated)
    assert (curated / MANIFEST_NAME).read_text() == EDITED
    assert [e.id for e in library.exemplars] == ["bwv101.7-phrase1", "parallel-fifths-pair", "bwv66.6-bars-1-2"]
    assert (library.config.good_threshold, library.config.bad_threshold, library.config.min_coverage) == (
        0.9,
        0.78,
        0.5,
    )
    assert library.get("parallel-fifths-pair").mode is Mode.CONTAINS and len(library.notes()) == 3


def test_a_new_library_gets_the_rendered_header_and_every_setting(tmp_path):
    Library.init(tmp_path / "lib", name='say "hi"', description="tab\there")
    assert (tmp_path / "lib" / MANIFEST_NAME).read_text() == (
        "# rollmatch exemplar library: edit by hand or with 'rollmatch library'.\n"
        "\n"
        "[library]\n"
        'name = "say \\"hi\\""\n'
        'description = "tab\\there"\n'
        "good_threshold = 0.83\n"
        "bad_threshold = 0.78\n"
        "min_coverage = 0.6\n"
        'mode = "near-copy"\n'
        "steps_per_beat = 12\n"
        "velocity = false\n"
    )


FIFTHS = Exemplar("fifths", Label.BAD, "bad/parallel-fifths.json", tracks=("Bass", 0), tags=("voice-leading",))


@pytest.mark.parametrize(
    ("before", "gone", "after"),
    [
        # No [library] table: the lines above the first table belong to the document.
        (
            '# top\n\n# about a\n[[exemplar]]\nid = "a"\n\n# about b\n[[exemplar]]\nid = "b"\n',
            "a",
            '# top\n\n# about b\n[[exemplar]]\nid = "b"\n',
        ),
        # The last table: the blank line before it goes too, and its own comments; a note at the end stays.
        (
            '[library]\nname = "x"\n\n[[exemplar]]\nid = "a"\n\n# about b\n[[exemplar]]\nid = "b"\n# b\'s own\n',
            "b",
            '[library]\nname = "x"\n\n[[exemplar]]\nid = "a"\n',
        ),
        (
            '[[exemplar]]\nid = "a"\n\n[[exemplar]]\nid = "b"\n# b\'s own\n\n# the end\n',
            "b",
            '[[exemplar]]\nid = "a"\n\n# the end\n',
        ),
        # The only table: no empty array is left behind.
        ('[library]\nname = "x"\n\n# about a\n[[exemplar]]\nid = "a"\n', "a", '[library]\nname = "x"\n'),
        # A table after the array keeps its comment.
        (
            '[[exemplar]]\nid = "a"\n\n[[exemplar]]\nid = "b"\n\n# settings\n[library]\nname = "x"\n',
            "b",
            '[[exemplar]]\nid = "a"\n\n# settings\n[library]\nname = "x"\n',
        ),
    ],
)
def test_removing_a_table_takes_the_comments_above_it_and_leaves_the_others(before, gone, after):
    assert without_exemplar(before, gone) == after


def test_added_tables_and_settings_go_where_a_curator_would_put_them():
    text = '[[exemplar]]\nid = "a"\n\n[library]\n# settings\nname = "x"  # short\n\n# trailing\n'
    assert with_exemplars(text, [FIFTHS]) == (
        '[[exemplar]]\nid = "a"\n\n[[exemplar]]\nid = "fifths"\nlabel = "bad"\nfile = "bad/parallel-fifths.json"\n'
        'tracks = ["Bass", 0]\ntags = ["voice-leading"]\n\n[library]\n# settings\nname = "x"  # short\n\n# trailing\n'
    )
    assert with_settings(text, {"name": "y", "bad_threshold": 0.7}) == (
        '[[exemplar]]\nid = "a"\n\n[library]\n# settings\nname = "y"  # short\nbad_threshold = 0.7\n\n# trailing\n'
    )
    # No [library] yet: one is added, after a blank line.
    assert with_settings('[[exemplar]]\nid = "a"\n', {"good_threshold": 0.9}).endswith(
        '\nid = "a"\n\n[library]\ngood_threshold = 0.9\n'
    )
    assert with_exemplars("exemplar = []\n", [FIFTHS]).startswith('[[exemplar]]\nid = "fifths"\n')
    with pytest.raises(LibraryError, match="exemplars written as an inline array cannot be added to"):
        with_exemplars('exemplar = [{id = "a", label = "good", file = "a.json"}]\n', [FIFTHS])
    fresh = with_exemplars(render_manifest(LibraryConfig(name="x")), [FIFTHS, FIFTHS])
    assert fresh.count('\n\n[[exemplar]]\nid = "fifths"\n') == 2 and "\n\n\n" not in fresh


def test_an_edit_that_would_not_read_back_as_asked_writes_nothing(curated, monkeypatch):
    before = (curated / MANIFEST_NAME).read_bytes()
    monkeypatch.setattr(library_module, "with_settings", lambda text, settings: text)  # loses the change
    with pytest.raises(LibraryError, match="would not read back as intended"):
        Library.open(curated).set_thresholds(good=0.9)
    assert (curated / MANIFEST_NAME).read_bytes() == before


def test_a_spec_is_checked_once_and_keeps_normalized_values():
    spec = ExemplarSpec(label="bad", start_beat=2, tracks=["Bass", 0], mode="contains", tags=["x"], threshold=1)
    assert (spec.label, spec.start_beat, spec.tracks, spec.mode, spec.tags, spec.threshold) == (
        Label.BAD,
        2.0,
        ("Bass", 0),
        Mode.CONTAINS,
        ("x",),
        1.0,
    )
    assert ExemplarSpec(label=Label.GOOD, bars=(3, 5)).bars == (3, 5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"label": "ugly"}, "label='ugly' must be 'good' or 'bad'"),
        ({"start_beat": -1}, "start_beat=-1 must be >= 0"),
        ({"start_beat": 4, "end_beat": 4}, "end_beat=4 must be > start_beat=4"),
        ({"end_beat": float("nan")}, "end_beat=nan must be a finite number"),
        ({"bars": (2, 3), "end_beat": 4}, r"bars=2-3 and a beat range \(start/end\) cannot be combined"),
        ({"bars": (3, 2)}, "bars=3-2 must not end before it starts"),
        ({"tracks": []}, r"tracks=\[\] must be a non-empty list of indices or names"),
        ({"tracks": "Bass"}, "tracks='Bass' must be a non-empty list"),
        ({"threshold": 0}, r"threshold=0 must be in \(0, 1\]"),
        ({"mode": "copy"}, "mode='copy' must be one of near-copy, contains"),
        ({"tags": "bach"}, "tags='bach' must be a list of strings"),
        ({"description": None}, "description=None must be text"),
    ],
)
def test_a_bad_spec_names_the_value(fields, message):
    with pytest.raises(ParameterError, match=message):
        ExemplarSpec(**{"label": "good", **fields})


def test_slices_refuse_a_selection(tmp_path):
    library = Library.init(tmp_path / "lib")
    with pytest.raises(ParameterError, match=r"^bars=1-2: slices cover the whole piece, so it takes no selection"):
        library.add_slices(chorale_path("bwv66.6"), ExemplarSpec(label="good", bars=(1, 2)), bars_per_exemplar=2)
    assert library.exemplars == () and Library.open(library.path).exemplars == ()
