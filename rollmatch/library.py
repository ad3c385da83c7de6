"""The exemplar library: a directory with a human-editable TOML manifest and the exemplar files.

A :class:`Library` is an immutable snapshot of that directory at one version. Changes (:meth:`Library.add`,
:meth:`Library.remove`) re-read the manifest under the directory's writer lock, write it back atomically and
return a new snapshot, so concurrent writers never lose an acknowledged change and readers holding an older
snapshot keep a consistent view. Parsed notes are cached in ``.rollmatch-cache/``, keyed by the file's
content and the selection, so the cache rebuilds itself when a file changes and never needs committing; each
write deletes the entries its new manifest no longer uses.

A snapshot also keeps the stat signature of every file it read (:attr:`Library.stamps`), so a long-lived
reader such as the server can notice a new version with a few ``stat`` calls instead of reading everything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .bars import BarRange, bar_slices, bar_span, check_bar_range, format_bar_range
from .checks import number, whole_number
from .engine import Mode, SearchSpace, check_mode
from .errors import AlreadyExistsError, InputError, LibraryError, NotFoundError, ParameterError
from .notes import select_beats
from .progress import Show, progress_bar
from .readers import format_of, read_file_bytes, read_notes, read_piece_bytes
from .storage import atomic_write, exclusive_lock
from .verdict import Label, Thresholds

MANIFEST_NAME = "rollmatch.toml"
CACHE_DIR = ".rollmatch-cache"
#: Folder inside the library that ``add`` copies exemplar files into.
FILES_DIR = "files"
#: Bump when the reader's output for the same file could change, to invalidate every cache entry.
CACHE_FORMAT = 1
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LIBRARY_ENV = "ROLLMATCH_LIBRARY"
DEFAULT_MODE = Mode(defaults.MODE)

#: A file's stat signature: inode, size, modification and change times (ns). Writers replace files (a new
#: inode) or write them (new times), so an equal signature means the same bytes.
Stamp = tuple[int, int, int, int]
#: Stat signatures of library files, by library-relative name; None where the file was missing.
Stamps = tuple[tuple[str, Stamp | None], ...]


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
class _Addition:
    """An exemplar about to be added: its entry (``file`` not yet placed), the source, its bytes and notes."""

    exemplar: Exemplar
    source: Path
    data: bytes
    notes: np.ndarray


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


def label_arrays(exemplars: Sequence[Exemplar]) -> tuple[np.ndarray, np.ndarray]:
    """For K exemplars: (K,) True for the bad ones, and (K,) each one's own threshold, NaN for none."""
    return (
        np.array([e.label is Label.BAD for e in exemplars], dtype=bool),
        np.array([np.nan if e.threshold is None else e.threshold for e in exemplars], dtype=np.float64),
    )


def default_library_path() -> Path:
    """``$ROLLMATCH_LIBRARY`` if set, else the ``exemplars/`` folder shipped beside the package."""
    env = os.environ.get(LIBRARY_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "exemplars"


@dataclass(frozen=True)
class Library:
    """A snapshot of an exemplar library directory."""

    path: Path
    config: LibraryConfig
    exemplars: tuple[Exemplar, ...]
    version: str  #: changes whenever the manifest or any exemplar file changes
    #: The manifest's and each exemplar file's stat signature, each taken before the file was read.
    stamps: Stamps = field(default=(), repr=False, compare=False)
    _digests: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)  #: file -> sha256 of its bytes
    _notes: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    # --- reading -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Library:
        """Load the library at ``path`` (default: :func:`default_library_path`)."""
        directory = Path(path) if path is not None else default_library_path()
        text, stamp, config, exemplars = _load_manifest(directory)
        digests, stamps = _read_files(directory, exemplars)
        version = hashlib.sha256(text)
        for exemplar in exemplars:
            digest = digests.get(exemplar.file)
            version.update(b"missing:" + exemplar.file.encode() if digest is None else digest)
        return cls(directory, config, exemplars, version.hexdigest()[:12], ((MANIFEST_NAME, stamp), *stamps), digests)

    def changed_on_disk(self) -> bool:
        """Whether the manifest or an exemplar file changed since this snapshot read them (a stat of each)."""
        return changed_since(self.path, self.stamps)

    @classmethod
    def init(cls, path: str | os.PathLike[str], *, name: str | None = None, description: str = "") -> Library:
        """Create an empty library at ``path`` (the directory may exist but must hold no manifest)."""
        directory = Path(path)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"{directory}: cannot create: {exc.strerror or exc}") from None
        with exclusive_lock(directory):
            if (directory / MANIFEST_NAME).exists():
                raise LibraryError(f"{directory}: already holds a library ({MANIFEST_NAME} exists)")
            config = LibraryConfig(name=name or directory.resolve().name, description=description)
            atomic_write(directory / MANIFEST_NAME, _render_manifest(config, ()).encode())
        return cls.open(directory)

    def get(self, exemplar_id: str) -> Exemplar:
        """The exemplar with this id, or :class:`NotFoundError`."""
        return _find(self.path, self.exemplars, exemplar_id)

    def notes(self, *, progress: Show = False) -> list[np.ndarray]:
        """Every exemplar's notes (beats), in manifest order, parsed once and cached on disk."""
        missing = [e for e in self.exemplars if e.id not in self._notes]
        for exemplar in progress_bar(missing, desc="preparing exemplars", show=progress and len(missing) > 1):
            self.exemplar_notes(exemplar.id)
        return [self._notes[e.id] for e in self.exemplars]

    def mode_of(self, exemplar: Exemplar) -> Mode:
        """How ``exemplar`` is matched: its own mode, else the library's."""
        return self.config.mode if exemplar.mode is None else exemplar.mode

    def exemplar_notes(self, exemplar_id: str) -> np.ndarray:
        """One exemplar's notes (beats), parsed once and cached like :meth:`notes`.

        Raises :class:`LibraryError` for this exemplar alone when its file is missing or unreadable or its
        selection holds no notes; the reader's error, if any, is chained as ``__cause__``. This is the
        lenient path for tools such as the lint that must go on past one broken exemplar.
        """
        if exemplar_id not in self._notes:
            exemplar = self.get(exemplar_id)
            self._notes[exemplar_id] = _load_exemplar_notes(self.path, exemplar, self._digests.get(exemplar.file))
        return self._notes[exemplar_id]

    # --- changing ------------------------------------------------------------------------------------

    def add(
        self,
        file: str | os.PathLike[str],
        *,
        label: str | Label,
        exemplar_id: str | None = None,
        start_beat: float | None = None,
        end_beat: float | None = None,
        bars: BarRange | None = None,
        tracks: Sequence[int | str] | None = None,
        threshold: float | None = None,
        mode: str | Mode | None = None,
        tags: Sequence[str] = (),
        description: str = "",
        provenance: str | None = None,
    ) -> Library:
        """Copy ``file`` into the library as a new exemplar and return the new snapshot.

        The file is read (with the selection) before anything is written, so a bad file changes nothing.
        See :meth:`add_many` for the arguments.
        """
        return self.add_many(
            [file],
            label=label,
            exemplar_ids=None if exemplar_id is None else [exemplar_id],
            start_beat=start_beat,
            end_beat=end_beat,
            bars=bars,
            tracks=tracks,
            threshold=threshold,
            mode=mode,
            tags=tags,
            description=description,
            provenance=provenance,
        )

    def add_many(
        self,
        files: Sequence[str | os.PathLike[str]],
        *,
        label: str | Label,
        exemplar_ids: Sequence[str] | None = None,
        start_beat: float | None = None,
        end_beat: float | None = None,
        bars: BarRange | None = None,
        tracks: Sequence[int | str] | None = None,
        threshold: float | None = None,
        mode: str | Mode | None = None,
        tags: Sequence[str] = (),
        description: str = "",
        provenance: str | None = None,
        progress: Show = False,
    ) -> Library:
        """Add each file as its own exemplar, in one library write, and return the new snapshot.

        Every file gets the same selection: a beat range [start_beat, end_beat), or ``bars=(first, last)``,
        whole bars by the file's own bar lines (1-based, inclusive, bar 0 a pickup; see
        :mod:`rollmatch.bars`), stored in the manifest as the beat range they cover; and ``tracks`` by
        index or name. ``mode`` (None: the library's) says how they are matched. Ids are ``exemplar_ids``
        (one per file) or come from the file names: the name's stem, with ``-bars-A-B`` appended for a bar
        range. Ids clashing with the library or within the batch are refused, and every file is read, before
        anything is written: any failure leaves the library as it was.
        """
        sources = [Path(f) for f in files]
        if not sources:
            raise ParameterError("files=[] must name at least one file")
        if exemplar_ids is not None and len(exemplar_ids) != len(sources):
            raise ParameterError(
                f"exemplar_ids: {len(exemplar_ids)} ids for {len(sources)} files; give one per file, or none"
            )
        bar_range = None if bars is None else check_bar_range(bars)
        if bar_range is not None and (start_beat is not None or end_beat is not None):
            raise ParameterError(
                f"bars={format_bar_range(bar_range)} and a beat range (start/end) cannot be combined: "
                "give one or the other"
            )
        in_bars = "" if bar_range is None else f", bars {format_bar_range(bar_range)}"
        planned = [
            _checked_exemplar(
                Exemplar(
                    id=exemplar_ids[i] if exemplar_ids is not None else _derived_id(source, bar_range),
                    label=_label(label),
                    file="",
                    start_beat=start_beat,
                    end_beat=end_beat,
                    tracks=tuple(tracks) if tracks else None,
                    threshold=threshold,
                    mode=mode,
                    tags=tuple(tags),
                    description=description,
                    provenance=provenance if provenance is not None else f"added from {source.name}{in_bars}",
                ),
                where="new exemplar",
            )
            for i, source in enumerate(sources)
        ]
        _refuse_clashes(
            self.path, _load_manifest(self.path)[3], [(e.id, str(s)) for e, s in zip(planned, sources, strict=True)]
        )
        additions: list[_Addition] = []
        reading = progress_bar(
            zip(planned, sources, strict=True), desc="reading", total=len(sources), show=progress and len(sources) > 1
        )
        for exemplar, source in reading:
            try:
                additions.append(_read_addition(exemplar, source, bar_range))
            except InputError as exc:
                if len(sources) == 1:
                    raise
                raise type(exc)(f"{exc}; nothing was added") from None
        return self._write_additions(additions)

    def add_slices(
        self,
        file: str | os.PathLike[str],
        *,
        bars_per_exemplar: int,
        label: str | Label,
        tracks: Sequence[int | str] | None = None,
        threshold: float | None = None,
        mode: str | Mode | None = None,
        tags: Sequence[str] = (),
        description: str = "",
        provenance: str | None = None,
    ) -> Library:
        """Cut ``file`` into consecutive exemplars of ``bars_per_exemplar`` bars each, in one library write.

        The slices follow :func:`~rollmatch.bars.bar_slices` (a pickup joins the first slice, a last slice
        shorter than half the others joins the one before); slices without notes in the chosen tracks are
        skipped. Ids are ``<stem>-bars-A-B``; any that already exists refuses the whole cut.
        """
        source = Path(file)
        per = whole_number(bars_per_exemplar, "bars_per_exemplar", at_least=1, at_most=defaults.MAX_BARS)
        template = _checked_exemplar(
            Exemplar(
                id=_id_from_name(source.stem),
                label=_label(label),
                file="",
                tracks=tuple(tracks) if tracks else None,
                threshold=threshold,
                mode=mode,
                tags=tuple(tags),
                description=description,
            ),
            where="new exemplar",
        )
        data = read_file_bytes(source)
        piece = read_piece_bytes(data, format_of(source), name=source.name, tracks=template.tracks)
        additions: list[_Addition] = []
        for bar_range in bar_slices(piece.bars, per):
            start, end = bar_span(piece.bars, bar_range, name=source.name)
            notes = select_beats(piece.notes, start, end)
            if notes.size == 0:
                continue
            exemplar = replace(
                template,
                id=_derived_id(source, bar_range),
                start_beat=start,
                end_beat=end,
                provenance=provenance
                if provenance is not None
                else f"sliced from {source.name}, bars {format_bar_range(bar_range)}",
            )
            additions.append(_Addition(exemplar, source, data, notes))
        if not additions:
            raise InputError(f"{source.name}: no notes in any bar (drum tracks are left out)")
        return self._write_additions(additions)

    def _write_additions(self, additions: Sequence[_Addition]) -> Library:
        """Append read and checked exemplars in one manifest write, under the lock; all or nothing."""
        with exclusive_lock(self.path):
            _, _, config, exemplars = _load_manifest(self.path)
            _refuse_clashes(self.path, exemplars, [(a.exemplar.id, str(a.source)) for a in additions])
            created: list[Path] = []
            manifest, text = self.path / MANIFEST_NAME, b""
            try:
                placed = []
                for addition in additions:
                    relative, new_file = _place_file(self.path, addition.source, addition.data)
                    if new_file:
                        created.append(self.path / relative)
                    placed.append(replace(addition.exemplar, file=relative))
                text = _render_manifest(config, (*exemplars, *placed)).encode()
                atomic_write(manifest, text)
            except BaseException:
                # The files copied in go again, unless the manifest naming them got written after all.
                if not (text and _holds(manifest, text)):
                    for path in created:
                        path.unlink(missing_ok=True)
                raise
            for exemplar, addition in zip(placed, additions, strict=True):
                _store_cache(self.path, exemplar, addition.data, addition.notes)
            return _pruned(Library.open(self.path))

    def set_thresholds(
        self, *, good: float | None = None, bad: float | None = None, min_coverage: float | None = None
    ) -> Library:
        """Change the library-wide thresholds and coverage requirement (None keeps one) and return the new
        snapshot."""
        checked = Thresholds().overridden(good=good, bad=bad, min_coverage=min_coverage)  # each given one, checked
        given = {"good_threshold": good, "bad_threshold": bad, "min_coverage": min_coverage}
        updates = {
            key: getattr(checked, name)
            for (key, value), name in zip(given.items(), ("good", "bad", "min_coverage"), strict=True)
            if value is not None
        }
        with exclusive_lock(self.path):
            _, _, config, exemplars = _load_manifest(self.path)
            atomic_write(self.path / MANIFEST_NAME, _render_manifest(replace(config, **updates), exemplars).encode())
            return _pruned(Library.open(self.path))

    def remove(self, exemplar_id: str) -> Library:
        """Remove an exemplar and return the new snapshot; a file that ``add`` copied in goes with it."""
        with exclusive_lock(self.path):
            _, _, config, exemplars = _load_manifest(self.path)
            gone = _find(self.path, exemplars, exemplar_id)
            kept = tuple(e for e in exemplars if e.id != exemplar_id)
            atomic_write(self.path / MANIFEST_NAME, _render_manifest(config, kept).encode())
            still_used = any(e.file == gone.file for e in kept)
            if not still_used and Path(gone.file).parts[:1] == (FILES_DIR,):
                (self.path / gone.file).unlink(missing_ok=True)
            return _pruned(Library.open(self.path))


# --- manifest ------------------------------------------------------------------------------------------

_CONFIG_KEYS = {
    "name",
    "description",
    "good_threshold",
    "bad_threshold",
    "steps_per_beat",
    "velocity",
    "min_coverage",
    "mode",
}
_EXEMPLAR_KEYS = {
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
}


def _load_manifest(directory: Path) -> tuple[bytes, Stamp, LibraryConfig, tuple[Exemplar, ...]]:
    """The manifest of the library at ``directory``: its bytes, its stat signature (taken before the read),
    its settings and its exemplars. Exemplar files are not read."""
    manifest = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise LibraryError(f"{directory}: no such library directory")
    if not manifest.is_file():
        raise LibraryError(
            f"{directory}: not a rollmatch library (no {MANIFEST_NAME}; create one with 'rollmatch library init')"
        )
    try:
        text, stamp = _read_stamped(manifest)
    except OSError as exc:
        raise LibraryError(f"{manifest}: cannot read: {exc.strerror or exc}") from None
    return (text, stamp, *_parse_manifest(text, manifest))


def _find(directory: Path, exemplars: Sequence[Exemplar], exemplar_id: str) -> Exemplar:
    """The exemplar with this id, or :class:`NotFoundError`."""
    for exemplar in exemplars:
        if exemplar.id == exemplar_id:
            return exemplar
    raise NotFoundError(f"{directory}: no exemplar with id {exemplar_id!r}")


def _parse_manifest(text: bytes, manifest: Path) -> tuple[LibraryConfig, tuple[Exemplar, ...]]:
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LibraryError(f"{manifest}: not valid TOML: {exc}") from None
    unknown = set(data) - {"library", "exemplar"}
    if unknown:
        raise LibraryError(f"{manifest}: unknown top-level key {sorted(unknown)[0]!r}")
    table = data.get("library", {})
    if not isinstance(table, dict) or set(table) - _CONFIG_KEYS:
        raise LibraryError(f"{manifest}: [library] has unknown key {sorted(set(table) - _CONFIG_KEYS)[0]!r}")
    try:
        config = LibraryConfig(
            name=str(table.get("name", "exemplars")),
            description=str(table.get("description", "")),
            good_threshold=table.get("good_threshold", defaults.GOOD_THRESHOLD),
            bad_threshold=table.get("bad_threshold", defaults.BAD_THRESHOLD),
            steps_per_beat=table.get("steps_per_beat", defaults.STEPS_PER_BEAT),
            velocity=table.get("velocity", False),
            min_coverage=table.get("min_coverage", defaults.MIN_COVERAGE),
            mode=table.get("mode", defaults.MODE),
        )
        # checked once, as the values they make, and stored as checked
        thresholds, space = config.thresholds, config.space
        config = replace(
            config,
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
        if set(entry) - _EXEMPLAR_KEYS:
            raise LibraryError(f"{where} has unknown key {sorted(set(entry) - _EXEMPLAR_KEYS)[0]!r}")
        for key in ("id", "label", "file"):
            if not isinstance(entry.get(key), str):
                raise LibraryError(f"{where} needs a string {key!r}")
        tracks = entry.get("tracks")
        try:
            exemplar = _checked_exemplar(
                Exemplar(
                    id=entry["id"],
                    label=entry["label"],
                    file=entry["file"],
                    start_beat=entry.get("start_beat"),
                    end_beat=entry.get("end_beat"),
                    tracks=tuple(tracks) if isinstance(tracks, list) else tracks,
                    threshold=entry.get("threshold"),
                    mode=entry.get("mode"),
                    tags=entry.get("tags", ()),
                    description=str(entry.get("description", "")),
                    provenance=str(entry.get("provenance", "")),
                ),
                where=where,
            )
        except ParameterError as exc:
            raise LibraryError(str(exc)) from None
        if exemplar.id in seen:
            raise LibraryError(f"{where}: id {exemplar.id!r} is used twice")
        seen.add(exemplar.id)
        exemplars.append(exemplar)
    return config, tuple(exemplars)


def _checked_exemplar(exemplar: Exemplar, *, where: str) -> Exemplar:
    """Validate one entry's fields, naming the entry and the field in the error."""
    if not ID_PATTERN.match(exemplar.id):
        raise ParameterError(
            f"{where}: id={exemplar.id!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    try:
        label = _label(exemplar.label)
    except ParameterError as exc:
        raise LibraryError(f"{where}: {exc}") from None
    for name in ("start_beat", "end_beat"):
        if getattr(exemplar, name) is not None:
            number(getattr(exemplar, name), f"{where}: {name}", at_least=0)
    if exemplar.start_beat is not None and exemplar.end_beat is not None and exemplar.end_beat <= exemplar.start_beat:
        raise ParameterError(f"{where}: end_beat={exemplar.end_beat} must be > start_beat={exemplar.start_beat}")
    if exemplar.tracks is not None and (
        not exemplar.tracks or not all(isinstance(t, int | str) and not isinstance(t, bool) for t in exemplar.tracks)
    ):
        raise ParameterError(f"{where}: tracks={exemplar.tracks!r} must be a non-empty list of indices or names")
    threshold = (
        None if exemplar.threshold is None else number(exemplar.threshold, f"{where}: threshold", above=0, at_most=1)
    )
    mode = None if exemplar.mode is None else check_mode(exemplar.mode, f"{where}: mode")
    if not isinstance(exemplar.tags, list | tuple) or not all(isinstance(t, str) for t in exemplar.tags):
        raise ParameterError(f"{where}: tags={exemplar.tags!r} must be a list of strings")
    if exemplar.file and (Path(exemplar.file).is_absolute() or ".." in Path(exemplar.file).parts):
        raise LibraryError(f"{where}: file={exemplar.file!r} must be a path inside the library directory")
    return replace(
        exemplar,
        label=label,
        start_beat=None if exemplar.start_beat is None else float(exemplar.start_beat),
        end_beat=None if exemplar.end_beat is None else float(exemplar.end_beat),
        threshold=threshold,
        mode=mode,
        tags=tuple(exemplar.tags),
    )


def _label(value: str | Label) -> Label:
    try:
        return Label(value)
    except ValueError:
        raise ParameterError(f"label={value!r} must be 'good' or 'bad'") from None


def _render_manifest(config: LibraryConfig, exemplars: Sequence[Exemplar]) -> str:
    """The manifest as TOML text: every library setting, and each exemplar's fields that are set."""
    lines = ["# rollmatch exemplar library: edit by hand or with 'rollmatch library'.", "", "[library]"]
    for key in (
        "name",
        "description",
        "good_threshold",
        "bad_threshold",
        "min_coverage",
        "mode",
        "steps_per_beat",
        "velocity",
    ):
        value = getattr(config, key)
        lines.append(f"{key} = {_toml(value.value if isinstance(value, Mode) else value)}")
    for e in exemplars:
        lines += ["", "[[exemplar]]"]
        for key, value in e.to_dict().items():
            if value is None or value == [] or value == "":
                continue
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string, except that TOML forbids a raw DEL character.
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")


# --- change detection ---------------------------------------------------------------------------------


def _stamp(stat: os.stat_result) -> Stamp:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _read_stamped(path: Path) -> tuple[bytes, Stamp]:
    """A file's bytes and its stat signature taken before reading, so any later change shows as a new one."""
    with path.open("rb") as handle:
        stamp = _stamp(os.fstat(handle.fileno()))
        return handle.read(), stamp


def _read_files(directory: Path, exemplars: Sequence[Exemplar]) -> tuple[dict[str, bytes], Stamps]:
    """The sha256 digest and the stat signature of each distinct exemplar file; a missing or unreadable file
    has no digest and a None signature."""
    digests: dict[str, bytes] = {}
    stamps: dict[str, Stamp | None] = {}
    for name in dict.fromkeys(e.file for e in exemplars):
        try:
            data, stamps[name] = _read_stamped(directory / name)
        except OSError:
            stamps[name] = None
            continue
        digests[name] = hashlib.sha256(data).digest()
    return digests, tuple(stamps.items())


def stamps_now(directory: Path, names: Iterable[str]) -> Stamps:
    """The current stat signature of each library-relative file name; None for a file that cannot be stat'ed."""
    out: list[tuple[str, Stamp | None]] = []
    for name in names:
        try:
            out.append((name, _stamp((directory / name).stat())))
        except OSError:
            out.append((name, None))
    return tuple(out)


def changed_since(directory: Path, stamps: Stamps) -> bool:
    """Whether any of these files changed (or appeared or vanished) since ``stamps`` were taken."""
    return stamps_now(directory, (name for name, _ in stamps)) != stamps


def _id_from_name(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:64]
    return cleaned or "exemplar"


def _place_file(directory: Path, source: Path, data: bytes) -> tuple[str, bool]:
    """The library-relative path of ``source``, copying it into ``files/`` unless it is already inside, and
    whether a new file was written."""
    try:
        return source.resolve().relative_to(directory.resolve()).as_posix(), False
    except ValueError:
        pass
    target_dir = directory / FILES_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / source.name
    if target.exists() and target.read_bytes() != data:
        target = target_dir / f"{source.stem}-{hashlib.sha256(data).hexdigest()[:8]}{source.suffix}"
    new_file = not target.exists()
    if new_file:
        atomic_write(target, data)
    return target.relative_to(directory).as_posix(), new_file


def _read_addition(exemplar: Exemplar, source: Path, bar_range: BarRange | None) -> _Addition:
    """Read ``source`` once for ``exemplar``, turning a bar range into the beat range it covers."""
    data = read_file_bytes(source)
    piece = read_piece_bytes(data, format_of(source), name=source.name, tracks=exemplar.tracks)
    if bar_range is not None:
        start, end = bar_span(piece.bars, bar_range, name=source.name)
        exemplar = replace(exemplar, start_beat=start, end_beat=end)
    return _Addition(exemplar, source, data, piece.select(exemplar.start_beat, exemplar.end_beat))


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _derived_id(source: Path, bar_range: BarRange | None) -> str:
    """An id from a file name: its stem, with ``-bars-A-B`` (or ``-bar-A``) for a bar range, within 64 characters."""
    stem = _id_from_name(source.stem)
    if bar_range is None:
        return stem
    first, last = bar_range
    suffix = f"-bar-{first}" if first == last else f"-bars-{first}-{last}"
    return (stem[: 64 - len(suffix)].rstrip("-._") or "exemplar") + suffix


def _refuse_clashes(directory: Path, current: Sequence[Exemplar], planned: Sequence[tuple[str, str]]) -> None:
    """:class:`AlreadyExistsError` naming every planned id (with its source name) that exists or repeats."""
    existing = {e.id for e in current}
    sources: dict[str, list[str]] = {}  # in planned order
    for exemplar_id, name in planned:
        sources.setdefault(exemplar_id, []).append(name)
    taken = [i for i in sources if i in existing]
    repeated = [i for i, names in sources.items() if len(names) > 1]
    problems = []
    if len(taken) == 1:
        problems.append(f"an exemplar with id {taken[0]!r} already exists")
    elif taken:
        problems.append(f"exemplars with ids {', '.join(map(repr, taken))} already exist")
    problems += [f"id {i!r} would be given to {len(sources[i])} exemplars ({', '.join(sources[i])})" for i in repeated]
    if problems:
        raise AlreadyExistsError(f"{directory}: {'; '.join(problems)}; nothing was added")


# --- notes cache -----------------------------------------------------------------------------------------


def _cache_key(exemplar: Exemplar, data: bytes) -> str:
    return _cache_key_of_digest(exemplar, hashlib.sha256(data).digest())


def _cache_key_of_digest(exemplar: Exemplar, digest: bytes) -> str:
    """The cache entry name for an exemplar whose file has this sha256 digest."""
    selection = json.dumps(
        [CACHE_FORMAT, exemplar.start_beat, exemplar.end_beat, exemplar.tracks, Path(exemplar.file).suffix]
    )
    return hashlib.sha256(digest + selection.encode()).hexdigest()[:24]


def _load_exemplar_notes(directory: Path, exemplar: Exemplar, digest: bytes | None) -> np.ndarray:
    """The exemplar's notes: from the cache entry of the file ``digest`` the snapshot read (None: the file
    was missing then), else parsed from the file and cached."""
    path = directory / exemplar.file
    if digest is not None:
        try:
            return np.load(directory / CACHE_DIR / f"{_cache_key_of_digest(exemplar, digest)}.npy", allow_pickle=False)
        except (OSError, ValueError):
            pass  # absent or unreadable: parse again
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LibraryError(
            f"{directory}: exemplar {exemplar.id!r}: cannot read {exemplar.file}: {exc.strerror or exc}"
        ) from None
    try:
        notes = read_notes(path, tracks=exemplar.tracks, start_beat=exemplar.start_beat, end_beat=exemplar.end_beat)
    except InputError as exc:
        raise LibraryError(f"exemplar {exemplar.id!r}: {exc}") from exc
    _store_cache(directory, exemplar, data, notes)
    return notes


def _store_cache(directory: Path, exemplar: Exemplar, data: bytes, notes: np.ndarray) -> None:
    """Write a cache entry; a read-only library simply goes uncached."""
    cache = directory / CACHE_DIR
    try:
        cache.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, notes, allow_pickle=False)
        atomic_write(cache / f"{_cache_key(exemplar, data)}.npy", buffer.getvalue())
    except OSError:
        pass


def _pruned(library: Library) -> Library:
    """Delete the cache entries ``library`` does not use (left by removed exemplars, changed files or
    selections, or an older cache format). Called by writers under the lock, on the manifest they wrote."""
    used = {
        f"{_cache_key_of_digest(e, library._digests[e.file])}.npy"
        for e in library.exemplars
        if e.file in library._digests
    }
    try:
        for entry in (library.path / CACHE_DIR).glob("*.npy"):
            if entry.name not in used:
                entry.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only library keeps its cache as it is
    return library
