from pathlib import Path

import numpy as np
import pytest

from rollmatch import Library, ParameterError, defaults, make_notes, read_notes, transform_notes
from rollmatch.lint import CODES, Finding, check_directory, check_library, random_material
from rollmatch.manifest import MANIFEST_NAME, ExemplarSpec
from rollmatch.notes import sort_notes

from .conftest import REPO, chorale_path, note_list, write_midi

SATB = ["Soprano", "Alto", "Tenor", "Bass"]


@pytest.fixture
def clean_library(tmp_path, chorale_excerpts) -> Library:
    """Four Bach phrases as good exemplars and two composed voice-leading faults as bad ones: lint-clean."""
    library = Library.init(tmp_path / "lib", name="crafted")
    for i in range(4):
        library = library.add(
            note_list(tmp_path / "src" / f"phrase{i}.json", chorale_excerpts[2 * i]), ExemplarSpec(label="good")
        )
    for name in ("parallel-fifths", "tritone-leaps"):
        library = library.add(REPO / "exemplars" / "bad" / f"{name}.json", ExemplarSpec(label="bad"))
    return library


def add_problem(
    problem: str, library: Library, src: Path, chorale_excerpts: list[np.ndarray]
) -> tuple[Library, set[str]]:
    """Give the clean library one problem; returns it and the exemplar ids the finding must name."""
    extra = chorale_excerpts[20]
    if problem == "file-missing":
        library = library.add(note_list(src / "gone.json", extra), ExemplarSpec(label="good"))
        (library.path / "files" / "gone.json").unlink()
        return library, {"gone"}
    if problem == "file-unreadable":
        library = library.add(write_midi(src / "broken.mid", extra), ExemplarSpec(label="good"))
        (library.path / "files" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
        return library, {"broken"}
    if problem == "exemplar-empty":
        library = library.add(
            note_list(src / "moved.json", extra), ExemplarSpec(label="good", start_beat=0, end_beat=4)
        )
        note_list(
            library.path / "files" / "moved.json", transform_notes(extra, shift_beats=8)
        )  # edited under the manifest
        return library, {"moved"}
    if problem == "exemplar-single-note":
        return library.add(note_list(src / "lone.json", extra[:1]), ExemplarSpec(label="bad")), {"lone"}
    if problem == "id-clash":
        library = library.add(
            note_list(src / "a.json", extra), ExemplarSpec(label="good"), exemplar_id="chorale-twenty"
        )
        return library.add(
            note_list(src / "b.json", chorale_excerpts[22]), ExemplarSpec(label="good"), exemplar_id="Chorale_Twenty"
        ), {"chorale-twenty", "Chorale_Twenty"}
    if problem == "file-clash":
        library = library.add(note_list(src / "x" / "phrase.json", extra), ExemplarSpec(label="good"), exemplar_id="x")
        return library.add(
            note_list(src / "y" / "Phrase.json", chorale_excerpts[22]), ExemplarSpec(label="good"), exemplar_id="y"
        ), {
            "x",
            "y",
        }
    if problem == "good-vetoed":
        # All four voices hold the soprano and alto exactly, so the pair matches well one way (0.97) and
        # poorly the other (0.73: the full score has twice the energy under its box).
        library = library.add(note_list(src / "full.json", bwv66_6()), ExemplarSpec(label="good"))
        return library.add(note_list(src / "upper.json", bwv66_6(SATB[:2])), ExemplarSpec(label="bad")), {
            "full",
            "upper",
        }
    if problem == "bad-matches-good":
        # The phrase with a descant two octaves above it: as a fragment it holds the good phrase whole, the
        # descant outside the phrase's box (1.0, covering 80%); the other way round the descant's empty rows
        # count (0.89), under the bad exemplar's own threshold of 0.95.
        full = bwv66_6()
        descant = transform_notes(bwv66_6(SATB[:1]), transpose=24)
        library = library.add(note_list(src / "full.json", full), ExemplarSpec(label="good"))
        with_descant = sort_notes(np.concatenate([full, descant]))
        return library.add(note_list(src / "descant.json", with_descant), ExemplarSpec(label="bad", threshold=0.95)), {
            "full",
            "descant",
        }
    if problem == "probe-good":
        # A soprano line alone as a good exemplar: its own lone voice, a probe, is judged GOOD through it.
        return library.add(note_list(src / "tune.json", bwv66_6(SATB[:1])), ExemplarSpec(label="good")), {"tune"}
    if problem == "near-duplicate":
        library = library.add(note_list(src / "phrase.json", extra), ExemplarSpec(label="good"))
        return library.add(
            note_list(src / "phrase-up3.json", transform_notes(extra, transpose=3)), ExemplarSpec(label="good")
        ), {
            "phrase",
            "phrase-up3",
        }
    if problem == "matches-random":
        # Four adjacent semitones held two beats: any busy texture fills three of them somewhere.
        cluster = make_notes([60, 61, 62, 63], [0] * 4, [2] * 4)
        return library.add(note_list(src / "cluster.json", cluster), ExemplarSpec(label="bad")), {"cluster"}
    raise AssertionError(problem)


def bwv66_6(voices: list[str] = SATB) -> np.ndarray:
    return read_notes(chorale_path("bwv66.6"), tracks=voices, end_beat=8)


def test_crafted_library_is_clean(clean_library):
    assert check_library(clean_library) == []


PROBLEMS = [code for code in CODES if code != "library-unreadable"]


@pytest.mark.parametrize("problem", PROBLEMS)
def test_each_problem_is_found_alone(problem, clean_library, tmp_path, chorale_excerpts):
    library, ids = add_problem(problem, clean_library, tmp_path / "src", chorale_excerpts)
    findings = check_library(Library.open(library.path))
    assert [f.code for f in findings] == [problem], findings
    (finding,) = findings
    assert set(finding.exemplars) == ids and all(repr(i) in finding.message for i in ids)


def test_veto_findings_name_the_direction_and_similarity(clean_library, tmp_path, chorale_excerpts):
    library, _ = add_problem("good-vetoed", clean_library, tmp_path / "src", chorale_excerpts)
    (finding,) = check_library(library)
    assert finding.exemplars == ("full", "upper")
    assert "good exemplar 'full' would be vetoed by bad exemplar 'upper'" in finding.message
    assert "(t+0, x1) >= its threshold 0.78" in finding.message


def test_thresholds_in_force_decide_the_veto_findings(clean_library, tmp_path, chorale_excerpts):
    library, _ = add_problem("good-vetoed", clean_library, tmp_path / "src", chorale_excerpts)
    assert check_library(library.set_thresholds(bad=0.98)) == []
    # The other direction, 0.73, reaches a good threshold of 0.7: the bad exemplar would also pass as good, and
    # so would a degenerate probe.
    findings = check_library(library.set_thresholds(good=0.7, bad=0.78))
    assert [f.code for f in findings][:2] == ["good-vetoed", "bad-matches-good"]
    assert {f.code for f in findings[2:]} == {"probe-good"}


def test_probe_findings_name_the_probe_and_the_exemplar(clean_library, tmp_path, chorale_excerpts):
    library, _ = add_problem("probe-good", clean_library, tmp_path / "src", chorale_excerpts)
    (finding,) = check_library(library)
    assert finding.message.startswith(
        "probe 'melody of tune' (lone voice) is judged GOOD through good exemplar 'tune': "
        "similarity 1.000, coverage 100% (t+0, x1)"
    )
    assert finding.exemplars == ("tune",) and finding.subject == "melody of tune"
    assert finding.to_dict()["subject"] == "melody of tune" and finding.key == (
        "probe-good",
        ("tune",),
        "melody of tune",
    )


def test_near_duplicates_follow_the_named_similarity(clean_library, tmp_path, chorale_excerpts):
    library, _ = add_problem("near-duplicate", clean_library, tmp_path / "src", chorale_excerpts)
    (finding,) = check_library(library)
    assert "each matches the other at 1.000" in finding.message and "(t+3, x1)" in finding.message
    # A lower near-duplicate similarity finds pairs of different Bach phrases, each between it and the default.
    loose = check_library(clean_library, near_duplicate_similarity=0.6)
    assert loose and {f.code for f in loose} == {"near-duplicate"}
    for f in loose:
        similarity = float(f.message.split("each matches the other at ")[1].split()[0])
        assert 0.6 <= similarity < defaults.NEAR_DUPLICATE_SIMILARITY


def test_every_problem_at_once_is_found_and_nothing_else(clean_library, tmp_path, chorale_excerpts):
    library = clean_library
    for problem in ("file-missing", "exemplar-single-note", "matches-random"):
        library, _ = add_problem(problem, library, tmp_path / problem, chorale_excerpts)
    assert [f.code for f in check_library(library)] == ["file-missing", "exemplar-single-note", "matches-random"]


def test_unreadable_manifest_is_a_finding_not_a_crash(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(
        '[[exemplar]]\nid = "a"\nlabel = "good"\nfile = "a.json"\n'
        '[[exemplar]]\nid = "a"\nlabel = "bad"\nfile = "b.json"\n'
    )
    (finding,) = check_directory(tmp_path)
    assert finding.code == "library-unreadable" and "id 'a' is used twice" in finding.message
    (finding,) = check_directory(tmp_path / "nowhere")
    assert finding.code == "library-unreadable" and "no such library directory" in finding.message


def test_empty_library_is_clean(tmp_path):
    assert check_library(Library.init(tmp_path / "lib")) == []


def test_default_library_passes_its_own_check(default_library):
    assert check_library(default_library) == []


def test_random_material_is_seeded_four_voice_music():
    first, again, other = (
        random_material(8, beats=8, seed=1),
        random_material(8, beats=8, seed=1),
        random_material(8, beats=8, seed=2),
    )
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again, strict=True))
    assert any(a.tobytes() != b.tobytes() for a, b in zip(first, other, strict=True))
    for notes in first:
        assert 40 <= notes["pitch"].min() and notes["pitch"].max() <= 81
        assert notes["start"].min() == 0 and notes["end"].max() == 8
        # four voices sounding all the time: four notes at every beat
        assert all(np.count_nonzero((notes["start"] <= t) & (notes["end"] > t)) == 4 for t in np.arange(0, 8, 0.5))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"near_duplicate_similarity": 0}, "near_duplicate_similarity=0 must be in (0, 1]"),
        ({"random_count": -1}, "random_count=-1 must be a whole number"),
        ({"random_beats": 0}, "random_beats=0 must be in (0, 1024]"),
        ({"random_match_fraction": 2}, "random_match_fraction=2 must be in (0, 1]"),
    ],
)
def test_bad_options_are_refused(tmp_path, option, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_library(Library.init(tmp_path / "lib"), **option)


def test_finding_serializes_for_tools():
    finding = Finding("near-duplicate", "a and b", ("a", "b"))
    assert finding.to_dict() == {"code": "near-duplicate", "message": "a and b", "exemplars": ["a", "b"]}
