"""The cached chorale material (tests/data/chorales.npz) is what the current reader reads from the corpus today.

Each test re-parses only one or two chorales; ``python tools/make_test_fixtures.py --check`` compares them all.
When one fails, rebuild the cache with ``python tools/make_test_fixtures.py`` (see tests/chorales.py).
"""

import numpy as np
import pytest

from rollmatch.notes import NOTE_DTYPE

from . import chorales

STALE = f"the cached chorales are stale: rebuild them with {chorales.REBUILD}"


@pytest.fixture(scope="module")
def cached() -> chorales.Chorales:
    return chorales.load()


def test_the_cache_holds_two_excerpts_of_each_of_55_chorales(cached):
    assert len(cached.excerpts) == chorales.EXCERPT_COUNT == len(cached.sources)
    assert cached.sources[::2] == cached.sources[1::2] and len(set(cached.sources)) == 55
    for excerpt in cached.excerpts:
        assert excerpt.dtype == NOTE_DTYPE and not excerpt.flags.writeable
        assert excerpt.size > 0 and excerpt["start"].min() >= 0 and excerpt["start"].max() < chorales.EXCERPT_BEATS
    assert set(cached.voices) == set(chorales.VOICE_SETS)


def test_the_cached_chorales_are_the_corpus_files_in_order(cached):
    # Every corpus file up to the last chorale taken is either taken or passed over for a reason on record, so a
    # music21 release that adds, drops or renames a chorale shows here.
    names = [p.name for p in chorales.corpus_chorales()]
    walked = names[: names.index(cached.sources[-1]) + 1]
    assert [n for n in walked if n not in cached.skipped] == cached.sources[::2], STALE
    assert set(cached.skipped) <= set(walked), STALE


@pytest.mark.parametrize("which", [0, -1], ids=["first", "last"])
def test_a_cached_chorale_reads_the_same_now(cached, which):
    name = cached.sources[which]
    path = {p.name: p for p in chorales.corpus_chorales()}[name]
    index = cached.sources.index(name)
    found = chorales.excerpts_of(path)
    assert not isinstance(found, str), f"{name}: {found}; {STALE}"
    for now, kept in zip(found, cached.excerpts[index : index + 2], strict=True):
        assert now.dtype == kept.dtype and np.array_equal(now, kept), f"{name}: {STALE}"


def test_a_cached_chorale_voice_reads_the_same_now(cached):
    name, beats = "bwv269", 16.0
    now = chorales.read_notes(chorales.chorale_path(name), tracks=["Tenor"], end_beat=beats)
    kept = cached.voices[name, beats]["Tenor"]
    assert now.dtype == kept.dtype and np.array_equal(now, kept), STALE
    assert list(cached.voices[name, beats]) == chorales.VOICES
