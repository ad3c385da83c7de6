import pytest

from rollmatch import Label, Library, ParameterError
from rollmatch.engine import Mode
from rollmatch.manifest import MANIFEST_NAME, ExemplarSpec

from .conftest import chorale_path


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
