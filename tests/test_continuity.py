"""Continuity: keys, ranges and the rules a bar must meet to join the one before it."""

import numpy as np
import pytest

from rollmatch import make_notes, read_notes
from rollmatch.continuity import (
    Continuity,
    Key,
    bar_line_leap,
    degenerate,
    fault,
    infer_key,
    material_rules,
    out_of_key_share,
    parse_key,
    parse_range,
)
from rollmatch.errors import ParameterError
from rollmatch.notes import split_voices

from .conftest import chorale_path

# Two voices a third apart for a bar: E5-F5 over C5-D5 in half notes.
BAR = make_notes([76, 72, 77, 74], [0, 0, 2, 2], [2, 2, 4, 4])
VOICES = np.array([1, 0, 1, 0])  # sorted by (start, pitch): C5 E5 D5 F5


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("G major", Key(7)),
        ("e minor", Key(4, True)),
        ("e", Key(4, True)),
        ("F#", Key(6)),
        ("Bb minor", Key(10, True)),
        ("f#m", Key(6, True)),
        ("E- major", Key(3)),
        ("C sharp minor", Key(1, True)),
    ],
)
def test_keys_parse_like_music21_names(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H major", "", "G mixolydian", "C major minor", 7])
def test_a_bad_key_is_named(text):
    with pytest.raises(ParameterError, match=r"is not a key; give e\.g\. 'G major'"):
        parse_key(text)


def test_key_names_and_classes():
    assert Key(3).name == "Eb major" and Key(9, True).name == "A minor"
    assert Key(9, True).classes() == {9, 11, 0, 2, 4, 5, 6, 7, 8}  # natural, melodic and harmonic minor
    assert Key(7).classes() == {7, 9, 11, 0, 2, 4, 6}


def test_a_chorales_key_is_inferred_by_music21():
    assert infer_key(read_notes(chorale_path("bwv269"))) == Key(7)  # BWV 269 is in G major
    with pytest.raises(ParameterError, match="give --key"):
        infer_key(BAR[:0])


def test_ranges_parse_as_midi_numbers_or_note_names():
    assert parse_range("C2-A5") == (36, 81) == parse_range("36-81")
    assert parse_range("F#3-Bb4") == (54, 70)
    for text, message in (
        ("C9-C2", "is empty: C9 lies above C2"),
        ("C2", "must be LOW-HIGH"),
        ("C2-X5", "'X5' is neither"),
        ("0-200", "'200' lies outside MIDI pitch 0-127"),
    ):
        with pytest.raises(ParameterError, match=message):
            parse_range(text)


def test_continuity_checks_its_own_values():
    with pytest.raises(ParameterError, match="high=30"):
        Continuity(low=40, high=30)
    with pytest.raises(ParameterError, match="out_of_key=2"):
        Continuity(out_of_key=2)


def test_degenerate_bars_are_named_by_their_probe_family():
    assert degenerate(make_notes([60], [0], [4]), polyphonic=False) == "one held note"
    assert degenerate(make_notes([60] * 4, [0, 1, 2, 3], [1, 2, 3, 4]), polyphonic=False) == "one repeated note"
    assert degenerate(make_notes([60, 64, 67], [0, 0, 0], [4, 4, 4]), polyphonic=False) == "one chord, held or repeated"
    struck = make_notes([63, 67, 70] * 4, [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3, [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3)
    assert degenerate(struck, polyphonic=True) == "one chord, held or repeated"  # re-struck sounds as held in a roll
    unison = make_notes([60, 60, 62, 62, 64, 64], [0, 0, 1, 1, 2, 2], [1, 1, 2, 2, 4, 4])
    assert degenerate(unison, polyphonic=True) == "a lone voice"  # two voices in unison are one line
    scale = make_notes([60, 62, 64, 65], [0, 1, 2, 3], [1, 2, 3, 4])
    assert degenerate(scale, polyphonic=True) == "a lone voice" and degenerate(scale, polyphonic=False) is None
    assert degenerate(BAR, polyphonic=True) is None


def test_fault_names_the_first_rule_broken():
    rules = Continuity(low=60, high=79, max_leap=12, key=Key(0))
    assert fault(BAR, VOICES, rules) is None
    assert fault(BAR[:0], VOICES[:0], rules) == "empty: the bar has no notes"
    assert fault(make_notes([60], [0], [4]), np.array([0]), rules) == "degenerate: one held note"
    low = BAR.copy()
    low["pitch"] -= 17  # G3 at the bottom
    assert fault(low, VOICES, rules) == "register: G3 lies below the range C4-G5"
    high = BAR.copy()
    high["pitch"] += 3
    assert fault(high, VOICES, rules) == "register: G#5 lies above the range C4-G5"
    sharp = BAR.copy()
    sharp["pitch"][0] += 1  # C#5 for half the bar in one voice of two: a quarter of the sounding time, allowed
    assert out_of_key_share(sharp, Key(0)) == 0.25 and fault(sharp, VOICES, rules) is None
    sharp["pitch"][2] += 1  # and D#5 for the other half: half of it
    assert fault(sharp, VOICES, rules) == "key: 50% of the bar lies outside C major (at most 25%)"
    far = make_notes(
        [79, 60, 77, 62], [0, 0, 2, 2], [2, 2, 4, 4]
    )  # the upper voice from F5 to G5, the lower from D5 to C4
    assert bar_line_leap(BAR[2:], VOICES[2:], far, split_voices(far)) == 14
    # numbered differently (the lower voice called 2 here): paired by rank, top with top, bottom with bottom
    assert bar_line_leap(BAR[2:], VOICES[2:], far, np.array([2, 0, 2, 0])) == 14
    assert bar_line_leap(BAR[2:], VOICES[2:], BAR, np.array([2, 0, 2, 0])) == 2
    assert fault(far, split_voices(far), rules, previous=BAR, previous_voices=VOICES) == (
        "voice-leading: a voice leaps 14 semitones across the bar line (at most 12)"
    )


def test_a_librarys_rules_come_from_its_good_exemplars(default_library):
    good = [
        n for e, n in zip(default_library.exemplars, default_library.notes(), strict=True) if e.label.value == "good"
    ]
    rules = material_rules([(n, split_voices(n)) for n in good], beats_per_bar=4)
    assert (rules.low, rules.high) == (
        min(int(n["pitch"].min()) for n in good),
        max(int(n["pitch"].max()) for n in good),
    )
    assert rules.polyphonic and rules.max_leap >= 12 and rules.key is None
    assert material_rules([(n, split_voices(n)) for n in good], beats_per_bar=4, register=(48, 72)).low == 48
