"""Rebuild the tests' cached chorale material, tests/data/chorales.npz (run from anywhere; takes 20-40 s).

The tests judge real Bach chorales from the music21 corpus; parsing them each session cost 15-20 s before the
first test ran, so they are parsed once, here, and the tests load the note arrays. What is cached and how it is
chosen is in tests/chorales.py.

Rerun it, and commit the new file, after:

- a change to how rollmatch reads scores (rollmatch/readers.py, rollmatch/notes.py) that changes the notes a
  chorale reads as;
- a music21 upgrade that does;
- a change to tests/chorales.py's selection (VOICE_SETS, the excerpt rule), e.g. a new test calling
  conftest.chorale_voices with a chorale not yet cached.

tests/test_chorales.py re-parses a few of the cached chorales with the current reader and fails when the cache is
stale. ``--check`` parses everything and compares it with the cache instead of writing (exit status 1 on a
difference).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests.chorales

from tests import chorales


def differences(cached: chorales.Chorales, parsed: chorales.Chorales) -> list[str]:
    """What differs between the cache and a fresh parse; empty when nothing does."""
    found = []
    if cached.sources != parsed.sources or cached.skipped != parsed.skipped:
        found.append("the chorales chosen differ")
    elif any(not np.array_equal(a, b) for a, b in zip(cached.excerpts, parsed.excerpts, strict=True)):
        found.append("excerpt notes differ")
    if cached.voices.keys() != parsed.voices.keys():
        found.append("the voice sets differ")
    else:
        for key, voices in parsed.voices.items():
            if any(not np.array_equal(voices[v], cached.voices[key][v]) for v in chorales.VOICES):
                found.append(f"the voices of {key[0]} (first {key[1]:g} beats) differ")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh parse with the cache, write nothing")
    args = parser.parse_args(argv)
    parsed = chorales.parse()
    if args.check:
        found = differences(chorales.load(), parsed)
        print("\n".join(found) or f"{chorales.CACHE} is up to date")
        return 1 if found else 0
    chorales.save(parsed)
    notes = sum(e.size for e in parsed.excerpts) + sum(n.size for v in parsed.voices.values() for n in v.values())
    print(
        f"wrote {chorales.CACHE}: {len(parsed.excerpts)} excerpts of {len(set(parsed.sources))} chorales and "
        f"{len(parsed.voices)} voice sets, {notes} notes, {chorales.CACHE.stat().st_size} bytes "
        f"(music21 {parsed.music21_version})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
