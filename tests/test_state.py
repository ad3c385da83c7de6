"""The served library: curation calls and changes on disk swap in new versions, once each and forward only."""

import asyncio
import json
import logging
import shutil
from pathlib import Path

import pytest
from rollmatch.server.state import LibraryState

from rollmatch import Library, read_notes
from rollmatch.manifest import MANIFEST_NAME, ExemplarSpec
from rollmatch.storage import atomic_write

from .conftest import REPO

EXAMPLES = REPO / "examples"


def motif(path: Path, pitches: list[int]) -> Path:
    path.write_text(json.dumps([{"pitch": p, "start": i, "end": i + 1} for i, p in enumerate(pitches)]))
    return path


@pytest.fixture
def directory(tmp_path) -> Path:
    Library.init(tmp_path / "lib", name="live").add(
        EXAMPLES / "bwv18.5-lz-opening.mid", ExemplarSpec(label="good")
    ).add(EXAMPLES / "planing.mid", ExemplarSpec(label="bad"))
    return tmp_path / "lib"


def ids(state: LibraryState) -> list[str]:
    return [e.id for e in state.library.exemplars]


def test_changes_on_disk_are_served_once_and_a_curation_call_is_not_loaded_twice(directory, tmp_path):
    arpeggio = motif(tmp_path / "b.json", [70, 74, 77])

    async def run() -> None:
        state = LibraryState(Library.open(directory), backend="cpu")
        first = state.scorer
        assert not await state.refresh() and state.scorer is first  # nothing changed
        added = await state.change(
            lambda lib: lib.add(motif(tmp_path / "a.json", [60, 61, 62]), ExemplarSpec(label="bad"))
        )
        by_curation = state.scorer
        assert by_curation is not first and state.library.version == added.version and "a" in ids(state)
        assert not await state.refresh() and state.scorer is by_curation  # the watcher does not load it again

        Library.open(directory).add(arpeggio, ExemplarSpec(label="good"))  # another writer, e.g. the CLI
        assert await state.refresh()
        assert state.library.version == Library.open(directory).version and ids(state)[-2:] == ["a", "b"]
        # A call that took the previous scorer finishes on the previous version.
        (held,) = by_curation.score([read_notes(arpeggio)])
        (now,) = state.scorer.score([read_notes(arpeggio)])
        assert held.good.exemplar != "b" and now.good.exemplar == "b" and now.good.similarity == pytest.approx(1.0)

        by_disk = state.scorer
        atomic_write(directory / MANIFEST_NAME, (directory / MANIFEST_NAME).read_bytes())  # touched, same bytes
        assert not await state.refresh() and state.scorer is by_disk  # same version: nothing rebuilt
        assert not await state.refresh()

    asyncio.run(run())


def test_a_curation_call_racing_a_reload_serves_the_latest_version(directory, tmp_path):
    async def run() -> None:
        state = LibraryState(Library.open(directory), backend="cpu")
        # on disk, not yet served
        Library.open(directory).add(motif(tmp_path / "b.json", [70, 74, 77]), ExemplarSpec(label="good"))
        await asyncio.gather(
            state.refresh(),
            state.change(lambda lib: lib.add(motif(tmp_path / "a.json", [60, 61, 62]), ExemplarSpec(label="bad"))),
            state.refresh(),
        )
        assert state.library.version == Library.open(directory).version and {"a", "b"} <= set(ids(state))
        assert not await state.refresh()

    asyncio.run(run())


def test_a_version_that_fails_to_load_keeps_the_served_one_and_is_logged_once(directory, caplog):
    caplog.set_level(logging.INFO, logger="rollmatch.server")
    manifest = directory / MANIFEST_NAME
    good_text = manifest.read_text()

    async def run() -> str:
        state = LibraryState(Library.open(directory), backend="cpu", retry_s=0)  # retry at every check
        served = state.scorer
        manifest.write_text(good_text + "[[exemplar\n")  # a hand edit gone wrong
        for _ in range(3):
            assert not await state.refresh()
        assert state.scorer is served and "not valid TOML" in state.failure
        (directory / "files/broken.mid").write_bytes(b"MThd garbage")
        manifest.write_text(good_text + '\n[[exemplar]]\nid = "broken"\nlabel = "good"\nfile = "files/broken.mid"\n')
        assert not await state.refresh()
        assert (
            state.scorer is served
            and "exemplar 'broken'" in state.failure
            and "not a readable MIDI file" in state.failure
        )
        shutil.copyfile(EXAMPLES / "bwv269-opening.mid", directory / "files/broken.mid")  # the file mended in place
        assert await state.refresh()
        assert state.failure is None and ids(state)[-1] == "broken"
        return served.library.version

    served_version = asyncio.run(run())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "not valid TOML" in warnings[0] and "exemplar 'broken'" in warnings[1]
    assert all(f"still serving version {served_version}" in w for w in warnings)
