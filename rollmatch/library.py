"""The exemplar library: a directory with a human-editable TOML manifest (:mod:`rollmatch.manifest`) and the
exemplar files.

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

import atexit
import contextlib
import functools
import hashlib
import importlib.resources
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import defaults
from .bars import BarRange, bar_slices, bar_span, format_bar_range
from .checks import whole_number
from .engine import Mode
from .errors import AlreadyExistsError, InputError, LibraryError, NotFoundError, ParameterError
from .manifest import (
    MANIFEST_NAME,
    Exemplar,
    ExemplarSpec,
    LibraryConfig,
    new_exemplar,
    parse_manifest,
    render_manifest,
    with_exemplars,
    with_settings,
    without_exemplar,
)
from .notes import select_beats
from .progress import Show, for_many, progress_bar
from .readers import format_of, read_file_bytes, read_notes, read_piece_bytes
from .storage import atomic_write, exclusive_lock
from .verdict import Label, Thresholds

CACHE_DIR = ".rollmatch-cache"
#: Folder inside the library that ``add`` copies exemplar files into.
FILES_DIR = "files"
#: Bump when the reader's output for the same file could change, to invalidate every cache entry.
CACHE_FORMAT = 1
LIBRARY_ENV = "ROLLMATCH_LIBRARY"
#: The package that holds the default library (the repository's ``exemplars/``, shipped as package data).
DEFAULT_LIBRARY_PACKAGE = "rollmatch.exemplars"

#: A file's stat signature: inode, size, modification and change times (ns). Writers replace files (a new
#: inode) or write them (new times), so an equal signature means the same bytes.
Stamp = tuple[int, int, int, int]
#: Stat signatures of library files, by library-relative name; None where the file was missing.
Stamps = tuple[tuple[str, Stamp | None], ...]


@dataclass(frozen=True)
class _Addition:
    """An exemplar about to be added: its entry (``file`` not yet placed), the source, its bytes and notes."""

    exemplar: Exemplar
    source: Path
    data: bytes
    notes: np.ndarray


@contextlib.contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """Hold the library's writer lock. A write the file system refuses (a full disk, no permission) is a
    :class:`LibraryError` naming the directory and the reason; every write is atomic, so the manifest stays as
    it was."""
    try:
        with exclusive_lock(directory):
            yield
    except OSError as exc:
        raise LibraryError(f"{directory}: cannot write: {exc.strerror or exc}") from None


def label_arrays(exemplars: Sequence[Exemplar]) -> tuple[np.ndarray, np.ndarray]:
    """For K exemplars: (K,) True for the bad ones, and (K,) each one's own threshold, NaN for none."""
    return (
        np.array([e.label is Label.BAD for e in exemplars], dtype=bool),
        np.array([np.nan if e.threshold is None else e.threshold for e in exemplars], dtype=np.float64),
    )


def default_library_path() -> Path:
    """``$ROLLMATCH_LIBRARY`` if set, else the default library shipped in the package (``rollmatch.exemplars``)."""
    env = os.environ.get(LIBRARY_ENV)
    return Path(env) if env else _shipped_library()


#: Keeps the shipped library on disk until the process exits, where the package is not a folder (a zip).
_resources = contextlib.ExitStack()
atexit.register(_resources.close)


@functools.cache
def _shipped_library() -> Path:
    """The shipped library's folder: in the installed package, or in the source tree of an editable install.
    Installed, it is read-only for most users; its notes cache then simply goes unwritten."""
    resource = importlib.resources.files(DEFAULT_LIBRARY_PACKAGE)
    return _resources.enter_context(importlib.resources.as_file(resource))


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
        with _writing(directory):
            if (directory / MANIFEST_NAME).exists():
                raise LibraryError(f"{directory}: already holds a library ({MANIFEST_NAME} exists)")
            config = LibraryConfig(name=name or directory.resolve().name, description=description)
            atomic_write(directory / MANIFEST_NAME, render_manifest(config).encode())
        return cls.open(directory)

    def get(self, exemplar_id: str) -> Exemplar:
        """The exemplar with this id, or :class:`NotFoundError`."""
        return _find(self.path, self.exemplars, exemplar_id)

    def notes(self, *, progress: Show = False) -> list[np.ndarray]:
        """Every exemplar's notes (beats), in manifest order, parsed once and cached on disk."""
        missing = [e for e in self.exemplars if e.id not in self._notes]
        for exemplar in progress_bar(missing, desc="preparing exemplars", show=for_many(progress, len(missing))):
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

    def add(self, file: str | os.PathLike[str], spec: ExemplarSpec, *, exemplar_id: str | None = None) -> Library:
        """Copy ``file`` into the library as a new exemplar and return the new snapshot.

        The file is read (with the selection) before anything is written, so a bad file changes nothing.
        See :meth:`add_many`.
        """
        return self.add_many([file], spec, exemplar_ids=None if exemplar_id is None else [exemplar_id])

    def add_many(
        self,
        files: Sequence[str | os.PathLike[str]],
        spec: ExemplarSpec,
        *,
        exemplar_ids: Sequence[str] | None = None,
        progress: Show = False,
    ) -> Library:
        """Add each file as its own exemplar, all as ``spec`` says, in one library write; return the new snapshot.

        A bar range in ``spec`` is found in each file's own bar lines (see :mod:`rollmatch.bars`) and stored
        as the beat range it covers. Ids are ``exemplar_ids`` (one per file) or come from the file names: the
        name's stem, with ``-bars-A-B`` appended for a bar range. Ids clashing with the library or within the
        batch are refused, and every file is read, before anything is written: any failure leaves the library
        as it was.
        """
        sources = [Path(f) for f in files]
        if not sources:
            raise ParameterError("files=[] must name at least one file")
        if exemplar_ids is not None and len(exemplar_ids) != len(sources):
            raise ParameterError(
                f"exemplar_ids: {len(exemplar_ids)} ids for {len(sources)} files; give one per file, or none"
            )
        in_bars = "" if spec.bars is None else f", bars {format_bar_range(spec.bars)}"
        planned = [
            new_exemplar(
                spec,
                exemplar_ids[i] if exemplar_ids is not None else _derived_id(source, spec.bars),
                provenance=f"added from {source.name}{in_bars}",
            )
            for i, source in enumerate(sources)
        ]
        _refuse_clashes(
            self.path, _load_manifest(self.path)[3], [(e.id, str(s)) for e, s in zip(planned, sources, strict=True)]
        )
        additions: list[_Addition] = []
        reading = progress_bar(
            zip(planned, sources, strict=True),
            desc="reading",
            total=len(sources),
            show=for_many(progress, len(sources)),
        )
        for exemplar, source in reading:
            try:
                additions.append(_read_addition(exemplar, source, spec.bars))
            except InputError as exc:
                if len(sources) == 1:
                    raise
                raise type(exc)(f"{exc}; nothing was added") from None
        return self._write_additions(additions)

    def add_slices(self, file: str | os.PathLike[str], spec: ExemplarSpec, *, bars_per_exemplar: int) -> Library:
        """Cut ``file`` into consecutive exemplars of ``bars_per_exemplar`` bars each, as ``spec`` says (which
        must select no beats or bars: the slices cover the piece), in one library write.

        The slices follow :func:`~rollmatch.bars.bar_slices` (a pickup joins the first slice, a last slice
        shorter than half the others joins the one before); slices without notes in the chosen tracks are
        skipped. Ids are ``<stem>-bars-A-B``; any that already exists refuses the whole cut.
        """
        source = Path(file)
        per = whole_number(bars_per_exemplar, "bars_per_exemplar", at_least=1, at_most=defaults.MAX_BARS)
        given = [f"bars={format_bar_range(spec.bars)}"] if spec.bars is not None else []
        given += [
            f"{name}={value:g}"
            for name, value in (("start_beat", spec.start_beat), ("end_beat", spec.end_beat))
            if value is not None
        ]
        if given:
            raise ParameterError(f"{', '.join(given)}: slices cover the whole piece, so it takes no selection")
        data = read_file_bytes(source)
        piece = read_piece_bytes(data, format_of(source), name=source.name, tracks=spec.tracks)
        additions: list[_Addition] = []
        for bar_range in bar_slices(piece.bars, per):
            start, end = bar_span(piece.bars, bar_range, name=source.name)
            notes = select_beats(piece.notes, start, end)
            if notes.size == 0:
                continue
            exemplar = new_exemplar(
                spec,
                _derived_id(source, bar_range),
                provenance=f"sliced from {source.name}, bars {format_bar_range(bar_range)}",
            )
            additions.append(_Addition(replace(exemplar, start_beat=start, end_beat=end), source, data, notes))
        if not additions:
            raise InputError(f"{source.name}: no notes in any bar (drum tracks are left out)")
        return self._write_additions(additions)

    def _write_additions(self, additions: Sequence[_Addition]) -> Library:
        """Append read and checked exemplars in one manifest write, under the lock; all or nothing."""
        with _writing(self.path):
            text, _, config, exemplars = _load_manifest(self.path)
            _refuse_clashes(self.path, exemplars, [(a.exemplar.id, str(a.source)) for a in additions])
            created: list[Path] = []
            manifest, written = self.path / MANIFEST_NAME, b""
            try:
                placed = []
                for addition in additions:
                    relative, new_file = _place_file(self.path, addition.source, addition.data)
                    if new_file:
                        created.append(self.path / relative)
                    placed.append(replace(addition.exemplar, file=relative))
                written = _edited(self.path, with_exemplars(text.decode(), placed), config, (*exemplars, *placed))
                atomic_write(manifest, written)
            except BaseException:
                # The files copied in go again, unless the manifest naming them got written after all.
                if not (written and _holds(manifest, written)):
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
        manifest_keys = {
            "good_threshold": (good, checked.good),
            "bad_threshold": (bad, checked.bad),
            "min_coverage": (min_coverage, checked.min_coverage),
        }
        updates = {key: value for key, (given, value) in manifest_keys.items() if given is not None}
        with _writing(self.path):
            text, _, config, exemplars = _load_manifest(self.path)
            changed = replace(
                config,
                good_threshold=updates.get("good_threshold", config.good_threshold),
                bad_threshold=updates.get("bad_threshold", config.bad_threshold),
                min_coverage=updates.get("min_coverage", config.min_coverage),
            )
            atomic_write(
                self.path / MANIFEST_NAME, _edited(self.path, with_settings(text.decode(), updates), changed, exemplars)
            )
            return _pruned(Library.open(self.path))

    def remove(self, exemplar_id: str) -> Library:
        """Remove an exemplar and return the new snapshot; a file that ``add`` copied in goes with it."""
        with _writing(self.path):
            text, _, config, exemplars = _load_manifest(self.path)
            gone = _find(self.path, exemplars, exemplar_id)
            kept = tuple(e for e in exemplars if e.id != exemplar_id)
            atomic_write(
                self.path / MANIFEST_NAME,
                _edited(self.path, without_exemplar(text.decode(), exemplar_id), config, kept),
            )
            still_used = any(e.file == gone.file for e in kept)
            if not still_used and Path(gone.file).parts[:1] == (FILES_DIR,):
                # the removal is written: a file left behind is debris, not a failed change
                with contextlib.suppress(OSError):
                    (self.path / gone.file).unlink(missing_ok=True)
            return _pruned(Library.open(self.path))


# --- manifest on disk ------------------------------------------------------------------------------------


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
    return (text, stamp, *parse_manifest(text, manifest))


def _edited(directory: Path, text: str, config: LibraryConfig, exemplars: Sequence[Exemplar]) -> bytes:
    """An edited manifest's bytes, once reading them back gives exactly the intended settings and exemplars,
    so that an edit of a hand-written document never writes anything but what was asked."""
    data = text.encode()
    if parse_manifest(data, directory / MANIFEST_NAME) != (config, tuple(exemplars)):
        raise LibraryError(f"{directory / MANIFEST_NAME}: the edited manifest would not read back as intended")
    return data


def _find(directory: Path, exemplars: Sequence[Exemplar], exemplar_id: str) -> Exemplar:
    """The exemplar with this id, or :class:`NotFoundError`."""
    for exemplar in exemplars:
        if exemplar.id == exemplar_id:
            return exemplar
    raise NotFoundError(f"{directory}: no exemplar with id {exemplar_id!r}")


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
