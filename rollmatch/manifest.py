"""The library manifest, ``rollmatch.toml``: its schema, its checked reading, and edits that keep a curator's
comments and order.

Reading validates every field and names the entry and the field in the error. Writing edits the curator's
document in place with ``tomlkit``: an addition appends ``[[exemplar]]`` tables, a removal takes one table out
together with the comments written directly above it, and a threshold change sets keys of ``[library]``;
every other line, comment and blank line stays as it was. Only a new library gets a rendered manifest.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, Null, Table, Whitespace

from . import defaults
from .bars import BarRange, check_bar_range, format_bar_range
from .checks import number
from .engine import DEFAULT_MODE, Mode, SearchSpace, check_mode
from .errors import LibraryError, ParameterError
from .verdict import Label, Thresholds

MANIFEST_NAME = "rollmatch.toml"
HEADER = "rollmatch exemplar library: edit by hand or with 'rollmatch library'."
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The ``[library]`` keys, in the order a new manifest lists them.
CONFIG_KEYS = (
    "name",
    "description",
    "good_threshold",
    "bad_threshold",
    "min_coverage",
    "mode",
    "steps_per_beat",
    "velocity",
)
#: The ``[[exemplar]]`` keys, in the order an added entry lists them.
EXEMPLAR_KEYS = (
    "id",
    "label",
    "file",
    "start_beat",
    "end_beat",
    "tracks",
    "threshold",
    "mode",
    "tags",
    "description",
    "provenance",
)


@dataclass(frozen=True)
class Exemplar:
    """One manifest entry: which notes of which file, and how to judge against them."""

    id: str
    label: Label
    file: str  #: path relative to the library directory
    start_beat: float | None = None
    end_beat: float | None = None
    tracks: tuple[int | str, ...] | None = None
    threshold: float | None = None  #: overrides the library's threshold for this exemplar's label
    mode: Mode | None = None  #: how it is matched; None: the library's mode
    tags: tuple[str, ...] = ()
    description: str = ""
    provenance: str = ""

    @property
    def beat_range(self) -> str:
        """The selected beats as text: '4-12', '0-end'."""
        return f"{self.start_beat or 0:g}-{'end' if self.end_beat is None else f'{self.end_beat:g}'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label.value,
            "file": self.file,
            "start_beat": self.start_beat,
            "end_beat": self.end_beat,
            "tracks": list(self.tracks) if self.tracks is not None else None,
            "threshold": self.threshold,
            "mode": None if self.mode is None else self.mode.value,
            "tags": list(self.tags),
            "description": self.description,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class LibraryConfig:
    """Library-wide settings from the manifest's ``[library]`` table."""

    name: str = "exemplars"
    description: str = ""
    good_threshold: float = defaults.GOOD_THRESHOLD
    bad_threshold: float = defaults.BAD_THRESHOLD
    steps_per_beat: int = defaults.STEPS_PER_BEAT
    velocity: bool = False  #: weight roll cells by velocity / 127 instead of 1
    min_coverage: float = defaults.MIN_COVERAGE  #: share of a fragment a good match must cover for GOOD
    mode: Mode = DEFAULT_MODE  #: how exemplars that name no mode are matched

    @property
    def thresholds(self) -> Thresholds:
        """The library's thresholds and coverage requirement, as one value."""
        return Thresholds(self.good_threshold, self.bad_threshold, self.min_coverage)

    @property
    def space(self) -> SearchSpace:
        """The library's search space: its grid, cell values and mode, with the default stretches and
        transpositions."""
        return SearchSpace(steps_per_beat=self.steps_per_beat, velocity=self.velocity, mode=self.mode)


@dataclass(frozen=True)
class ExemplarSpec:
    """What a new exemplar takes from its file and how it is judged: everything but its id and file.

    Checked once, when made, each error naming the value (``threshold=1.5 must be in (0, 1]``). The CLI and
    the server build one from their arguments; ``label`` and ``mode`` may be given as strings and ``tracks``
    and ``tags`` as lists, and are kept as :class:`Label`, :class:`Mode` and tuples.
    """

    label: Label
    start_beat: float | None = None  #: the beats [start_beat, end_beat) of the file; None: its start, its end
    end_beat: float | None = None
    #: Whole bars (first, last) by the file's own bar lines, 1-based and inclusive, bar 0 a pickup; stored in
    #: the manifest as the beats they cover. Instead of a beat range.
    bars: BarRange | None = None
    tracks: tuple[int | str, ...] | None = None  #: tracks or parts by index or name; None: all
    threshold: float | None = None  #: overrides the library's threshold for this exemplar's label
    mode: Mode | None = None  #: how it is matched; None: the library's mode
    tags: tuple[str, ...] = ()
    description: str = ""
    provenance: str | None = None  #: None: said from the file's name (and bars)

    def __post_init__(self) -> None:
        # Frozen: the checked, normalized values replace the given ones through object.__setattr__.
        checked: dict[str, Any] = {"label": check_label(self.label)}
        for name in ("start_beat", "end_beat"):
            value = getattr(self, name)
            checked[name] = None if value is None else number(value, name, at_least=0)
        start, end = checked["start_beat"], checked["end_beat"]
        if start is not None and end is not None and end <= start:
            raise ParameterError(f"end_beat={end:g} must be > start_beat={start:g}")
        if self.bars is not None:
            checked["bars"] = check_bar_range(self.bars)
            if start is not None or end is not None:
                raise ParameterError(
                    f"bars={format_bar_range(checked['bars'])} and a beat range (start/end) cannot be combined: "
                    "give one or the other"
                )
        tracks = self.tracks
        if tracks is not None:
            if not (
                isinstance(tracks, list | tuple)
                and tracks
                and all(isinstance(t, int | str) and not isinstance(t, bool) for t in tracks)
            ):
                raise ParameterError(f"tracks={tracks!r} must be a non-empty list of indices or names")
            checked["tracks"] = tuple(tracks)
        if self.threshold is not None:
            checked["threshold"] = number(self.threshold, "threshold", above=0, at_most=1)
        if self.mode is not None:
            checked["mode"] = check_mode(self.mode)
        if not isinstance(self.tags, list | tuple) or not all(isinstance(t, str) for t in self.tags):
            raise ParameterError(f"tags={self.tags!r} must be a list of strings")
        checked["tags"] = tuple(self.tags)
        for name in ("description", "provenance"):
            value = getattr(self, name)
            if not isinstance(value, str) and not (name == "provenance" and value is None):
                raise ParameterError(f"{name}={value!r} must be text")
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def new_exemplar(spec: ExemplarSpec, exemplar_id: str, *, file: str = "", provenance: str) -> Exemplar:
    """The manifest entry for ``spec`` under ``exemplar_id``; ``provenance`` is used where the spec gives none."""
    return Exemplar(
        id=check_id(exemplar_id),
        label=spec.label,
        file=file,
        start_beat=spec.start_beat,
        end_beat=spec.end_beat,
        tracks=spec.tracks,
        threshold=spec.threshold,
        mode=spec.mode,
        tags=spec.tags,
        description=spec.description,
        provenance=provenance if spec.provenance is None else spec.provenance,
    )


def check_id(value: Any) -> str:
    """An exemplar id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ParameterError(
            f"id={value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def check_label(value: Any) -> Label:
    """An exemplar's label, 'good' or 'bad'."""
    try:
        return Label(value)
    except ValueError:
        raise ParameterError(f"label={value!r} must be 'good' or 'bad'") from None


# --- reading ---------------------------------------------------------------------------------------------


def parse_manifest(text: bytes, manifest: Path) -> tuple[LibraryConfig, tuple[Exemplar, ...]]:
    """The settings and exemplars of a manifest's bytes, or :class:`LibraryError` naming ``manifest``, the
    entry and the field."""
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LibraryError(f"{manifest}: not valid TOML: {exc}") from None
    unknown = set(data) - {"library", "exemplar"}
    if unknown:
        raise LibraryError(f"{manifest}: unknown top-level key {sorted(unknown)[0]!r}")
    table = data.get("library", {})
    if not isinstance(table, dict) or set(table) - set(CONFIG_KEYS):
        raise LibraryError(f"{manifest}: [library] has unknown key {sorted(set(table) - set(CONFIG_KEYS))[0]!r}")
    try:
        raw = LibraryConfig(
            name=str(table.get("name", "exemplars")),
            description=str(table.get("description", "")),
            good_threshold=table.get("good_threshold", defaults.GOOD_THRESHOLD),
            bad_threshold=table.get("bad_threshold", defaults.BAD_THRESHOLD),
            steps_per_beat=table.get("steps_per_beat", defaults.STEPS_PER_BEAT),
            velocity=table.get("velocity", False),
            min_coverage=table.get("min_coverage", defaults.MIN_COVERAGE),
            mode=table.get("mode", defaults.MODE),
        )
        # checked once, as the values they make, and kept as checked
        thresholds, space = raw.thresholds, raw.space
        config = replace(
            raw,
            good_threshold=thresholds.good,
            bad_threshold=thresholds.bad,
            min_coverage=thresholds.min_coverage,
            steps_per_beat=space.steps_per_beat,
            mode=space.mode,
        )
    except ParameterError as exc:
        raise LibraryError(f"{manifest}: [library] {exc}") from None
    entries = data.get("exemplar", [])
    if not isinstance(entries, list):
        raise LibraryError(f"{manifest}: 'exemplar' must be an array of tables ([[exemplar]])")
    exemplars: list[Exemplar] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{manifest}: exemplar {i + 1}"
        exemplar = _entry(entry, where)
        if exemplar.id in seen:
            raise LibraryError(f"{where}: id {exemplar.id!r} is used twice")
        seen.add(exemplar.id)
        exemplars.append(exemplar)
    return config, tuple(exemplars)


def _entry(entry: Any, where: str) -> Exemplar:
    """One ``[[exemplar]]`` table as an :class:`Exemplar`, checked by the rules of :class:`ExemplarSpec`."""
    if not isinstance(entry, dict):
        raise LibraryError(f"{where} must be a table")
    if set(entry) - set(EXEMPLAR_KEYS):
        raise LibraryError(f"{where} has unknown key {sorted(set(entry) - set(EXEMPLAR_KEYS))[0]!r}")
    for key in ("id", "label", "file"):
        if not isinstance(entry.get(key), str):
            raise LibraryError(f"{where} needs a string {key!r}")
    file = entry["file"]
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise LibraryError(f"{where}: file={file!r} must be a path inside the library directory")
    tracks = entry.get("tracks")
    try:
        spec = ExemplarSpec(
            label=entry["label"],
            start_beat=entry.get("start_beat"),
            end_beat=entry.get("end_beat"),
            tracks=tuple(tracks) if isinstance(tracks, list) else tracks,
            threshold=entry.get("threshold"),
            mode=entry.get("mode"),
            tags=entry.get("tags", ()),
            description=str(entry.get("description", "")),
            provenance=str(entry.get("provenance", "")),
        )
        return new_exemplar(spec, entry["id"], file=file, provenance="")
    except ParameterError as exc:
        raise LibraryError(f"{where}: {exc}") from None


# --- writing ---------------------------------------------------------------------------------------------


def render_manifest(config: LibraryConfig) -> str:
    """A new library's manifest: the header comment and every setting of ``[library]``."""
    document = tomlkit.document()
    document.add(tomlkit.comment(HEADER))
    document.add(tomlkit.nl())
    table = tomlkit.table()
    for key in CONFIG_KEYS:
        value = getattr(config, key)
        table.add(key, value.value if isinstance(value, Mode) else value)
    document.add("library", table)
    return tomlkit.dumps(document)


def with_exemplars(text: str, exemplars: Sequence[Exemplar]) -> str:
    """The manifest ``text`` with a ``[[exemplar]]`` table appended for each of ``exemplars``."""
    document = tomlkit.parse(text)
    tables = document.get("exemplar")
    if tables is not None and not isinstance(tables, AoT):
        if len(tables):
            raise LibraryError(
                f"{MANIFEST_NAME}: exemplars written as an inline array cannot be added to; write them as "
                "[[exemplar]] tables"
            )
        document.remove("exemplar")  # 'exemplar = []'
        tables = None
    if tables is None:
        blank_line = _ends_with_a_line(_body_before(document, len(document.body)))
        tables = tomlkit.aot()
        document.append("exemplar", tables)
    else:
        blank_line = _ends_with_a_line(tables[-1].value.body)
    for exemplar in exemplars:
        table = tomlkit.table()
        for key, value in exemplar.to_dict().items():
            if value is not None and value != [] and value != "":
                table.add(key, value)
        table.trivia.indent = "\n" if blank_line else ""  # a blank line above the header
        tables.append(table)
        blank_line = True
    if exemplars and any(key is not None for key, _ in document.body[_position(document, "exemplar") + 1 :]):
        tables[-1].value.body.append((None, tomlkit.nl()))  # a table follows the array: a blank line before it
    return tomlkit.dumps(document)


def without_exemplar(text: str, exemplar_id: str) -> str:
    """The manifest ``text`` without the ``[[exemplar]]`` table of ``exemplar_id``.

    The comment lines directly above its header go with it; the ones at its end that stand directly above the
    next header stay, above that header.
    """
    document = tomlkit.parse(text)
    tables = document["exemplar"]
    index = next(i for i, table in enumerate(tables) if table.get("id") == exemplar_id)
    position = _position(document, "exemplar")
    at_end = index == len(tables) - 1 and not any(k is not None for k, _ in document.body[position + 1 :])
    own = tables[index].value.body
    start = _comment_run_start(own, len(own))
    # The comments at its end stand above the next header; after the last table, only those set apart by a
    # blank line are not its own (a note at the end of the file).
    keep = not at_end or (start > 0 and isinstance(own[start - 1][1], Whitespace))
    above_next = own[start:] if keep else []
    # The lines above a header are the trailing lines of whatever precedes it: the previous table, a table
    # before the array, or the document itself, in the lines before the array.
    if index > 0:
        body = tables[index - 1].value.body
        end = len(body)
    else:
        body = _body_before(document, position)
        end = position if body is document.body else len(body)
    del tables[index]
    if not len(tables):
        document.remove("exemplar")  # an empty array would be written as 'exemplar = []'
    # Last, as it may shift the document's entries, which are only rendered from here on.
    body[_comment_run_start(body, end) : end] = above_next
    while at_end and body and body[-1][0] is None and isinstance(body[-1][1], Whitespace):
        body.pop()  # the blank line that stood before the removed table
    return tomlkit.dumps(document)


def with_settings(text: str, settings: Mapping[str, Any]) -> str:
    """The manifest ``text`` with these ``[library]`` keys set; a key already there keeps its place and its
    comment, a new one goes after the table's last key."""
    document = tomlkit.parse(text)
    table = document.get("library")
    if table is None:
        table = tomlkit.table()
        document.add("library", table)
    for key, value in settings.items():
        if key in table or not isinstance(table, Table):  # an inline table has no lines of its own
            table[key] = value
            continue
        # The lines after the last key stand above the next header: keep them there, below the new key.
        body = table.value.body
        start = _keyless_run_start(body, len(body))
        trailing = body[start:]
        del body[start:]
        table[key] = value
        body.extend(trailing)
    return tomlkit.dumps(document)


def _position(document: Container, key: str) -> int:
    return next(i for i, (k, _) in enumerate(document.body) if k is not None and k.key == key)


def _body_before(document: Container, position: int) -> list[tuple[Any, Any]]:
    """The body whose trailing lines render directly before ``document.body[position]``: a table's that ends
    there, else the document's own."""
    if position > 0:
        key, item = document.body[position - 1]
        if key is not None and isinstance(item, Table):
            return item.value.body
        if key is not None and isinstance(item, AoT) and len(item):
            return item[-1].value.body
    return document.body


def _ends_with_a_line(body: list[tuple[Any, Any]]) -> bool:
    """Whether ``body`` renders any line and the last is not blank: a header that follows needs a blank line."""
    shown = [item for _, item in body if not isinstance(item, Null)]
    return bool(shown) and not isinstance(shown[-1], Whitespace)


def _comment_run_start(body: list[tuple[Any, Any]], end: int) -> int:
    """Where the run of comment lines that ends at ``end`` begins: the comments written directly above the
    header that follows."""
    start = end
    while start > 0 and body[start - 1][0] is None and isinstance(body[start - 1][1], Comment):
        start -= 1
    return start


def _keyless_run_start(body: list[tuple[Any, Any]], end: int) -> int:
    """Where the lines without a key (comments, blank lines) that end at ``end`` begin."""
    start = end
    while start > 0 and body[start - 1][0] is None:
        start -= 1
    return start
