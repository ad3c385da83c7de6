"""The degenerate probes: their families by hand, and that no real library judges any of them GOOD."""

import json

import numpy as np
import pytest

from rollmatch import Library, Outcome, Scorer, make_notes, read_notes
from rollmatch.manifest import ExemplarSpec
from rollmatch.probes import degenerate_probes, exemplar_probes, generic_probes, voices

from .conftest import REPO, chorale_path, note_list

FAMILIES = {
    "held note",
    "held chord",
    "repeated note",
    "scale run",
    "arpeggio",
    "random walk",
    "lone voice",
    "rhythm on one pitch",
}


def test_voices_split_a_texture_by_rank_at_each_onset():
    # Soprano C5 D5, alto G4 held, bass C3 E3: the alto is the inner voice throughout.
    texture = make_notes([72, 74, 67, 48, 52], [0, 1, 0, 0, 1], [1, 2, 2, 1, 2])
    split = dict(voices(texture))
    assert list(split) == ["top voice", "inner voice 1", "bottom voice"]
    assert split["top voice"]["pitch"].tolist() == [72, 74]
    assert split["inner voice 1"]["pitch"].tolist() == [67]
    assert split["bottom voice"]["pitch"].tolist() == [48, 52]
    melody = make_notes([60, 62], [0, 1], [1, 2])
    assert [name for name, _ in voices(melody)] == ["melody"]


def test_generic_probes_are_seeded_and_cover_every_family():
    first, again, other = generic_probes(seed=1), generic_probes(seed=1), generic_probes(seed=2)
    assert [p.name for p in first] == [p.name for p in again]
    assert all(a.notes.tobytes() == b.notes.tobytes() for a, b in zip(first, again, strict=True))
    walks = [
        (a.notes.tobytes(), b.notes.tobytes()) for a, b in zip(first, other, strict=True) if a.family == "random walk"
    ]
    assert walks and any(a != b for a, b in walks)
    assert {p.family for p in first} == FAMILIES - {"lone voice", "rhythm on one pitch"}
    held = {p.name: p.notes for p in first}
    assert held["C3 held 16 beats"].tolist() == [(48, 0.0, 16.0, 90)]
    chord = held["open four-note chord on C4 held 4 beats"]
    assert chord["pitch"].tolist() == [48, 55, 64, 72] and set(chord["end"]) == {4.0}
    repeated = held["C5 repeated in eighths, 16 beats"]
    assert repeated.size == 32 and set(repeated["pitch"]) == {72}
    for walk in (p.notes for p in first if p.family == "random walk"):
        assert set(walk["pitch"] % 12) <= {0, 2, 4, 5, 7, 9, 11}  # in C major
        assert walk["start"][0] == 0 and walk["end"][-1] >= 16 and np.all(walk["start"][1:] == walk["end"][:-1])


def test_exemplar_probes_take_its_voices_rhythm_and_opening_chord():
    phrase = read_notes(chorale_path("bwv269"), tracks=["Soprano", "Alto", "Tenor", "Bass"], start_beat=1, end_beat=7)
    probes = {p.name: p for p in exemplar_probes("x", phrase)}
    assert {p.family for p in probes.values()} == {"lone voice", "rhythm on one pitch", "held chord"}
    soprano = read_notes(chorale_path("bwv269"), tracks=["Soprano"], start_beat=1, end_beat=7)
    np.testing.assert_array_equal(probes["top voice of x"].notes["pitch"], soprano["pitch"])
    assert {"inner voice 1 of x", "inner voice 2 of x", "bottom voice of x"} <= set(probes)
    first = phrase["start"].min()
    (rhythm,) = (p.notes for p in probes.values() if p.family == "rhythm on one pitch")
    assert len(set(rhythm["pitch"])) == 1 and rhythm["start"].tolist() == sorted(set(phrase["start"] - first))
    opening = probes["opening chord of x held 6 beats"].notes
    assert sorted(opening["pitch"]) == sorted(phrase["pitch"][phrase["start"] == first]) and set(opening["end"]) == {
        6.0
    }


def probes_judged_good(library: Library) -> list[str]:
    scorer = Scorer(library)
    good = [(e.id, n) for e, n in zip(library.exemplars, library.notes(), strict=True) if e.label.value == "good"]
    probes = degenerate_probes(good)
    assert {p.family for p in probes} == FAMILIES
    verdicts = scorer.score([p.notes for p in probes])
    return [
        f"{p.name}: {v.good.exemplar} {v.good.similarity:.3f}"
        for p, v in zip(probes, verdicts, strict=True)
        if v.outcome is Outcome.GOOD
    ]


def test_no_probe_is_judged_good_by_the_shipped_library(default_library):
    assert probes_judged_good(default_library) == []


def test_no_probe_is_judged_good_by_a_library_of_other_chorales(tmp_path, chorale_excerpts):
    library = Library.init(tmp_path / "lib")
    for i in range(60, 110, 5):  # ten phrases the shipped library does not hold
        library = library.add(
            note_list(tmp_path / "src" / f"phrase{i}.json", chorale_excerpts[i]), ExemplarSpec(label="good")
        )
    assert probes_judged_good(library) == []


@pytest.mark.parametrize(
    "records",
    [
        [{"pitch": 62, "start": 0, "end": 16}],  # one D4 held for 16 beats
        [{"pitch": 67, "start": i, "end": i + 1} for i in range(16)],  # sixteen repeated G4 quarters
    ],
)
def test_the_reported_loopholes_are_closed(records, tmp_path, default_library):
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(records))
    verdict = Scorer(default_library).score([read_notes(path)])[0]
    assert verdict.outcome is Outcome.UNMATCHED and verdict.good.similarity < 0.6
    assert (REPO / "exemplars" / "good" / "bwv245.17.mxl").exists()  # the exemplar they used to pass through
