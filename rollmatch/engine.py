"""The matching engine: normalized FFT cross-correlation of fragments against every exemplar.

For a fragment F and an exemplar template E (the exemplar rendered at one stretch factor and cropped to its
pitch and time extent), placed at transposition t and shift d, the engine works in a window W: the rows of
E's pitch extent (transposed by t) over the time span of the *shorter* of the two. So W is E's box when the
fragment is at least as long as the exemplar, and E's whole pitch extent over the fragment's span when the
fragment is shorter: then the fragment is matched against the *time-piece* of the exemplar it spans, with
every voice that the exemplar sounds there, so a lone voice, a held note or one repeated note of a longer
exemplar falls far below a match. With c = <E, F> (E placed at (t, d)), F_W = |F under W|^2 and
E_W = |E under W|^2 (= |E|^2 when the whole exemplar lies in W)::

    near-copy:  sim = c / (Ê · sqrt(F_W)),  Ê^2 = max(E_W, ρ |E|^2)     ρ = defaults.PARTIAL_MIN_SHARE
    contains:   sim = c / (|E| · max(sqrt(S), sqrt(F_W / κ)))           κ = defaults.CONTAINS_DENSITY

where S is F's energy on E's own cells (= c on binary rolls). Both lie in [0, 1] by Cauchy-Schwarz.

- **near-copy** is the cosine between E and F under W: for binary rolls sqrt(recall × precision), recall the
  share of E's cells that F sounds and precision the share of F's cells in W that E sounds. A dense cluster
  under the box raises the denominator as much as the numerator, so density alone never makes a match,
  extra notes inside the box lower the score and notes outside it do not.
- **contains** asks whether all of E's notes are present and lets other notes sound around them: for binary
  rolls sqrt(recall × min(1, κ × precision)), recall taken over the whole exemplar, so a fragment contains a
  pattern whole or scores as the share of it that it holds. The guard κ keeps a cluster, which contains every
  pattern, from matching: past κ times the matched notes' energy, extra notes lower the score as in near-copy.
- **The share floor ρ** (near-copy): a fragment shorter than the exemplar holds at most E_W of it; below
  ρ|E|^2 the score falls as sqrt(E_W / (ρ|E|^2)), so a single chord or beat of a long exemplar is no match,
  while the first half of an exemplar, all voices, still matches at 1.

:func:`match` also reports each best alignment's **coverage**, F_W / |F|^2: the share of the fragment's
sounding cells (weighted by their squared value when the roll is velocity-weighted) that lie in W.

The array code is written once against ``xp`` (numpy or cupy). Correlation runs as a real FFT along time
and, per frequency bin, one complex matrix product of the fragment's transposed pitch rows (a Toeplitz
stack) with the exemplars' conjugate spectra; box energies come from cumulative sums over pitch and time.
Fragments are split into overlap-save segments so the FFT length stays bounded whatever their length. The
sparse CPU path (:mod:`rollmatch.sparse`) computes the same similarities from runs of notes.
"""

from __future__ import annotations

import enum
import importlib.util
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from . import defaults
from .backend import fft_module, fft_workers, to_device, to_host
from .checks import number, whole_number
from .errors import ParameterError
from .roll import N_PITCHES, check_steps_per_beat, note_steps, note_values, render, runs

#: How ``match`` computes: 'dense' (FFT and matrix products, any array backend), 'sparse' (runs of notes,
#: numpy with numba) or 'auto' (sparse where it can run, else dense). Both give the same results.
METHODS = ("auto", "dense", "sparse")

#: Templates per matrix product; also the granularity of the spectra cache.
TEMPLATE_CHUNK = 128
#: FFT lengths kept in the spectra cache at once.
SPECTRA_CACHE_SIZE = 3
#: Bytes of fragment energy tables the sparse path builds at once; larger batches run in chunks.
SPARSE_BLOCK_BYTES = 256 * 1024 * 1024
#: Smallest FFT length used (short fragments against short exemplars).
MIN_FFT_LENGTH = 64


class Mode(enum.StrEnum):
    """How an exemplar is matched (see the module docstring)."""

    NEAR_COPY = "near-copy"  #: the fragment holds a close copy: extra notes in the exemplar's box count against it
    CONTAINS = "contains"  #: the exemplar's notes are present; other notes may sound around them


DEFAULT_MODE = Mode(defaults.MODE)


def check_mode(value: str | Mode, name: str = "mode") -> Mode:
    """Validate a match mode, returning it as a :class:`Mode`."""
    try:
        return Mode(value)
    except ValueError:
        raise ParameterError(f"{name}={value!r} must be one of {', '.join(m.value for m in Mode)}") from None


def _checked_stretches(stretches: Sequence[float]) -> tuple[float, ...]:
    """A stretch set as a tuple: 1-32 distinct finite factors within [1/8, 8]."""
    if isinstance(stretches, str) or not isinstance(stretches, Sequence):
        raise ParameterError(f"stretches={stretches!r} must be a sequence of factors")
    values = tuple(number(s, "stretch", above=0) for s in stretches)
    if not values:
        raise ParameterError("stretches must name at least one factor")
    if len(values) > defaults.MAX_STRETCHES:
        raise ParameterError(f"stretches has {len(values)} factors; at most {defaults.MAX_STRETCHES} are allowed")
    for s in values:
        number(s, "stretch", at_least=1 / defaults.MAX_STRETCH, at_most=defaults.MAX_STRETCH)
    if len(set(values)) != len(values):
        raise ParameterError(f"stretches={list(values)} repeats a factor")
    return values


@dataclass(frozen=True)
class SearchSpace:
    """Where the engine looks for each exemplar in a fragment, and on what grid: validated once, here.

    A library's manifest sets the grid (``steps_per_beat``), the cell values (``velocity``) and the default
    ``mode``; a request may narrow or widen the ``stretches`` and the ``transpose_range`` (semitones, both
    ways).
    """

    stretches: tuple[float, ...] = defaults.STRETCHES  #: uniform time-stretch factors applied to the exemplars
    transpose_range: int = defaults.TRANSPOSE_RANGE  #: transpositions -R..+R semitones are searched
    steps_per_beat: int = defaults.STEPS_PER_BEAT  #: grid resolution of the piano rolls
    velocity: bool = False  #: weight roll cells by velocity / 127 instead of 1
    mode: Mode = DEFAULT_MODE  #: how exemplars that name no mode of their own are matched

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once, here
        set_(self, "stretches", _checked_stretches(self.stretches))
        set_(
            self,
            "transpose_range",
            whole_number(self.transpose_range, "transpose_range", at_least=0, at_most=defaults.MAX_TRANSPOSE_RANGE),
        )
        set_(self, "steps_per_beat", check_steps_per_beat(self.steps_per_beat))
        if not isinstance(self.velocity, bool):
            raise ParameterError(f"velocity={self.velocity!r} must be true or false")
        set_(self, "mode", check_mode(self.mode))

    def overridden(
        self, *, stretches: Sequence[float] | None = None, transpose_range: int | None = None
    ) -> SearchSpace:
        """This space with the given stretches and transposition range (None keeps one)."""
        space = self if stretches is None else replace(self, stretches=tuple(stretches))
        return space if transpose_range is None else replace(space, transpose_range=transpose_range)

    @property
    def templates(self) -> SearchSpace:
        """What a :class:`TemplateBank` depends on: this space at transposition range 0, a cache key."""
        return replace(self, transpose_range=0)


@dataclass(frozen=True)
class BestMatches:
    """Best alignment of each of B fragments against each of K exemplars, over all stretches,
    transpositions and shifts. All arrays have shape (B, K) and live on the host."""

    similarity: np.ndarray  #: float64 in [0, 1]; 0 where nothing overlaps
    transpose: np.ndarray  #: int64 semitones added to the exemplar
    shift_steps: np.ndarray  #: int64 fragment step (from the fragment's beat 0) of the exemplar's first onset
    stretch: np.ndarray  #: float64 stretch factor applied to the exemplar
    coverage: np.ndarray  #: float64 in [0, 1], share of the fragment's sounding cells in the window; 0 with no match


class TemplateBank:
    """Exemplars rendered once at every stretch factor in a shared pitch band, with their conjugate spectra
    cached per FFT length, ready to be matched against any batch of fragments.

    Template m = k * S + s is exemplar k at stretch s of ``space``; each is cropped to start at its first onset.
    ``modes`` gives each exemplar's :class:`Mode` (default: the space's mode for all).
    """

    def __init__(
        self,
        exemplars: Sequence[np.ndarray],
        space: SearchSpace | None = None,
        *,
        modes: Sequence[str | Mode] | None = None,
        xp: ModuleType = np,
    ) -> None:
        self.xp = xp
        self.space = SearchSpace() if space is None else space
        self.stretches = self.space.stretches
        self.steps_per_beat = self.space.steps_per_beat
        self.velocity = velocity = self.space.velocity
        self.n_exemplars = len(exemplars)
        for k, notes in enumerate(exemplars):
            if notes.size == 0:
                raise ParameterError(f"exemplar {k} has no notes")
        if modes is None:
            modes = [self.space.mode] * self.n_exemplars
        if len(modes) != self.n_exemplars:
            raise ParameterError(f"modes: {len(modes)} modes for {self.n_exemplars} exemplars; give one per exemplar")
        self.modes = tuple(check_mode(m) for m in modes)
        self.stretch_count = len(self.stretches)
        pitches = np.concatenate([e["pitch"] for e in exemplars]) if exemplars else np.zeros(1, np.int16)
        self.band_lo = int(pitches.min())
        self.band = int(pitches.max()) + 1 - self.band_lo  # P, pitch rows of every template

        rendered = []
        for notes in exemplars:
            origin = notes["start"].min()
            for stretch in self.stretches:
                on, off = note_steps(_stretched(notes, origin, stretch), self.steps_per_beat)
                rendered.append(
                    (notes["pitch"].astype(np.int64) - self.band_lo, on, off, note_values(notes, velocity=velocity))
                )
        self.n_templates = len(rendered)
        length = np.array([off.max() for _, _, off, _ in rendered], dtype=np.int64)
        pitch_lo = np.array([r.min() for r, *_ in rendered], dtype=np.int64)
        pitch_hi = np.array([r.max() + 1 for r, *_ in rendered], dtype=np.int64)
        # Templates are stored sorted by shape (pitch rows and length): the window energies a shape needs do not
        # depend on what the template holds, so each chunk computes them once per shape it contains.
        self.template_of = np.lexsort((length, pitch_hi, pitch_lo))  # stored position -> template k * S + s
        self.position_of = np.argsort(self.template_of)  # template k * S + s -> stored position
        self.length = length[self.template_of]  # steps of each stored template
        self.pitch_lo = pitch_lo[self.template_of]  # band rows, inclusive
        self.pitch_hi = pitch_hi[self.template_of]  # band rows, exclusive
        self.contains = np.array(
            [self.modes[m // self.stretch_count] is Mode.CONTAINS for m in self.template_of], dtype=bool
        )
        keys = np.stack([self.pitch_lo, self.pitch_hi, self.length], axis=1)
        self.shapes, self.shape_of = np.unique(keys, axis=0, return_inverse=True)  # (U, 3); stored -> shape, ascending
        self.shape_of = self.shape_of.ravel()
        self.max_length = int(length.max()) if rendered else 1  # T_E
        rolls = np.zeros((self.n_templates, self.band, self.max_length), dtype=np.float32)
        for i, m in enumerate(self.template_of):
            rows, on, off, values = rendered[m]
            rolls[i] = render(rows, on, off, values, (self.band, self.max_length))
        squares = rolls.astype(np.float64) ** 2
        self.energy = squares.sum(axis=(1, 2))  #: |E|^2 of each stored template
        self.norm = np.sqrt(self.energy)
        # Energy over every row and steps [0, j) at column j: what a window spanning steps holds of a template.
        self.time_energy = np.zeros((self.n_templates, self.max_length + 1))
        self.time_energy[:, 1:] = squares.sum(axis=1).cumsum(axis=1)
        self._rolls = rolls
        # Half the energy of the faintest possible cell: a box with less than this holds no note.
        self.min_energy = 0.5 * (1 / 127) ** 2 if velocity else 0.5
        # On binary rolls a fragment's energy on a template's cells is the correlation itself; velocity-weighted
        # 'contains' templates need it correlated separately, against their cells' indicator.
        self.needs_support = bool(velocity and self.contains.any())
        self._spectra: OrderedDict[tuple[int, bool], list[Any]] = OrderedDict()
        self._runs: dict[str, np.ndarray] | None = None

    @cached_property
    def time_energy_device(self) -> Any:
        """:attr:`time_energy` as float32 on the bank's device (dense path only, so built on first use)."""
        return to_device(self.xp, self.time_energy.astype(np.float32))

    def runs(self) -> dict[str, np.ndarray]:
        """The templates as runs of constant value, for the sparse path (built once)."""
        if self._runs is None:
            n, band, steps = self._rolls.shape
            row, on, off, value = runs(self._rolls.reshape(n * band, steps))
            template = row // band
            self._runs = {
                "start": np.searchsorted(template, np.arange(n + 1)).astype(np.int64),
                "row": row % band,
                "on": on,
                "off": off,
                "value": value,
            }
        return self._runs

    def spectra(self, fft_length: int, *, support: bool = False) -> list[Any]:
        """Conjugate spectra of the templates divided by their norms, for one FFT length: chunks of shape
        (L//2+1, P, <=TEMPLATE_CHUNK), so the correlation comes out already divided by |E|. With ``support``,
        the spectra of the templates' cell indicators instead (1 where a template sounds), undivided.

        Each carries a phase ramp that delays the correlation by T_E - 1 steps, so that output index k is
        shift d = k - (T_E - 1): negative shifts come first and the shifts run in order, with no wrap-around.
        """
        key = (fft_length, support)
        if key in self._spectra:
            self._spectra.move_to_end(key)
            return self._spectra[key]
        xp = self.xp
        fft = fft_module(xp)
        frequency = np.arange(fft_length // 2 + 1)
        delay = to_device(xp, np.exp(-2j * np.pi * frequency * (self.max_length - 1) / fft_length))
        chunks = []
        for m0 in range(0, self.n_templates, TEMPLATE_CHUNK):
            rolls = self._rolls[m0 : m0 + TEMPLATE_CHUNK]
            values = (
                (rolls > 0).astype(np.float32)
                if support
                else rolls / self.norm[m0 : m0 + TEMPLATE_CHUNK, None, None].astype(np.float32)
            )
            spectrum = xp.conj(fft.rfft(to_device(xp, values), n=fft_length, axis=-1, **fft_workers(xp))) * delay
            chunks.append(xp.ascontiguousarray(spectrum.transpose(2, 1, 0)).astype(xp.complex64))
        self._spectra[key] = chunks
        while len(self._spectra) > SPECTRA_CACHE_SIZE:
            self._spectra.popitem(last=False)
        return chunks


def _stretched(notes: np.ndarray, origin: float, stretch: float) -> np.ndarray:
    out = notes.copy()
    out["start"] = (notes["start"] - origin) * stretch
    out["end"] = (notes["end"] - origin) * stretch
    return out


@dataclass(frozen=True)
class _Fragment:
    """A fragment rendered on the grid and cropped in time to start at its first onset."""

    roll: np.ndarray  # (128, T_b) float32
    first_step: int  # step of the first onset, from the fragment's beat 0
    energy: float  # |F|^2

    @cached_property
    def runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The roll's runs (:func:`rollmatch.roll.runs`), for the sparse kernel and for coverage alike."""
        return runs(self.roll)


def _prepare_fragment(notes: np.ndarray, steps_per_beat: int, velocity: bool) -> _Fragment | None:
    if notes.size == 0:
        return None
    on, off = note_steps(notes, steps_per_beat)
    first = int(on.min())
    pitch = notes["pitch"].astype(np.int64)
    roll = render(
        pitch, on - first, off - first, note_values(notes, velocity=velocity), (N_PITCHES, int(off.max()) - first)
    )
    return _Fragment(roll, first, float((roll.astype(np.float64) ** 2).sum()))


def _transpositions(transpose_range: int) -> np.ndarray:
    """Transpositions -R..+R ordered 0, -1, +1, -2, ...: both paths take the first maximum they find, so a tie
    goes to the smallest |t|."""
    return np.array(sorted(range(-transpose_range, transpose_range + 1), key=lambda t: (abs(t), t)), dtype=np.int64)


def _fft_length(needed: int) -> int:
    """The smallest length >= ``needed`` whose only prime factors are 2, 3 and 5 (fast for pocketfft and cuFFT
    alike, and up to a third shorter than the next power of two)."""
    import scipy.fft  # noqa: PLC0415  (lazy: import rollmatch stays light)

    return max(MIN_FFT_LENGTH, int(scipy.fft.next_fast_len(needed, real=True)))


def resolve_method(method: str, xp: ModuleType) -> str:
    """'dense' or 'sparse' for ``method`` on array module ``xp``."""
    if method not in METHODS:
        raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
    sparse_possible = xp is np and importlib.util.find_spec("numba") is not None
    if method == "sparse" and not sparse_possible:
        raise ParameterError("method='sparse' needs numpy arrays and numba")
    if method == "auto":
        return "sparse" if sparse_possible else "dense"
    return method


def match(
    fragments: Sequence[np.ndarray],
    bank: TemplateBank,
    space: SearchSpace | None = None,
    *,
    method: str = "auto",
) -> BestMatches:
    """Best similarity of each fragment (note arrays, beats) against each exemplar in ``bank``.

    Searches every transposition within the space's range, every time shift and every stretch of the bank.
    ``space`` (default: the bank's) may differ from the bank's in its transposition range only. Returns
    (B, K) host arrays; an empty fragment gets similarity 0 everywhere. ``method`` picks the computation (see
    :data:`METHODS`); the results do not depend on it.
    """
    space = bank.space if space is None else space
    if space.templates != bank.space.templates:
        raise ParameterError(f"space={space} differs from the bank's {bank.space} in more than its transpose_range")
    transpose_range = space.transpose_range
    method = resolve_method(method, bank.xp)
    sims = np.zeros((len(fragments), bank.n_templates))
    trans = np.zeros((len(fragments), bank.n_templates), dtype=np.int64)
    shifts = np.zeros((len(fragments), bank.n_templates), dtype=np.int64)
    prepared = [_prepare_fragment(f, bank.steps_per_beat, bank.velocity) for f in fragments]
    if bank.n_templates and method == "sparse":
        for chunk in _sparse_chunks(prepared):
            _match_sparse(chunk, prepared, bank, transpose_range, sims, trans, shifts)
    elif bank.n_templates:
        for fft_length, group in _segments(prepared, bank).items():
            _match_group(group, prepared, bank, transpose_range, fft_length, sims, trans, shifts)
    picked = _best_stretch(sims, bank)
    return _reported(picked, sims, trans, shifts, prepared, bank)


def _present(prepared: Sequence[_Fragment | None], b: int) -> _Fragment:
    """Fragment b of a batch, known to have notes (only those are matched)."""
    fragment = prepared[b]
    assert fragment is not None, f"fragment {b} is empty"
    return fragment


def _sparse_chunks(prepared: Sequence[_Fragment | None]) -> Iterator[list[int]]:
    """Indices of the non-empty fragments in chunks whose sparse tables fit SPARSE_BLOCK_BYTES, shortest
    fragments first so that little of each table is padding."""
    present = sorted(
        (b for b, frag in enumerate(prepared) if frag is not None), key=lambda b: _present(prepared, b).roll.shape[1]
    )
    chunk: list[int] = []
    for b in present:
        if (
            chunk
            and (len(chunk) + 1) * (N_PITCHES + 1) * (_present(prepared, b).roll.shape[1] + 1) * 8 > SPARSE_BLOCK_BYTES
        ):
            yield chunk
            chunk = []
        chunk.append(b)
    if chunk:
        yield chunk


def _match_sparse(
    present: list[int],
    prepared: Sequence[_Fragment | None],
    bank: TemplateBank,
    transpose_range: int,
    sims: np.ndarray,
    trans: np.ndarray,
    shifts: np.ndarray,
) -> None:
    """The sparse path for the fragments ``present``: runs matched by the compiled kernel."""
    from . import sparse  # noqa: PLC0415  (imports numba)

    frags = [_present(prepared, b) for b in present]
    longest = max(f.roll.shape[1] for f in frags)
    per_fragment = [f.runs for f in frags]
    counts = np.array([len(r[0]) for r in per_fragment])
    squares = np.zeros((len(frags), N_PITCHES, longest))
    for j, f in enumerate(frags):
        squares[j, :, : f.roll.shape[1]] = f.roll.astype(np.float64) ** 2
    t_values = _transpositions(transpose_range)
    t_index = np.empty(t_values.size, dtype=np.int64)
    t_index[t_values + transpose_range] = np.arange(t_values.size)
    template = bank.runs()
    fragments = sparse.FragmentRuns(
        start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        row_first=np.stack([np.searchsorted(r[0], np.arange(N_PITCHES + 1)) for r in per_fragment]).astype(np.int64),
        on=np.concatenate([r[1] for r in per_fragment]),
        off=np.concatenate([r[2] for r in per_fragment]),
        value=np.concatenate([r[3] for r in per_fragment]),
        length=np.array([f.roll.shape[1] for f in frags], dtype=np.int64),
        energy_table=sparse.prefix_sums(squares),
    )
    templates = sparse.TemplateRuns(
        start=template["start"],
        row=template["row"],
        on=template["on"],
        off=template["off"],
        value=template["value"],
        length=bank.length,
        pitch_lo=bank.pitch_lo,
        pitch_hi=bank.pitch_hi,
        energy=bank.energy,
        shape=bank.shape_of.astype(np.int64),
        contains=bank.contains,
        time_energy=bank.time_energy,
        band_lo=bank.band_lo,
    )
    search = sparse.SearchParameters(
        transpose_range=transpose_range,
        transpositions=t_values,
        transposition_index=t_index,
        min_energy=bank.min_energy,
        min_share=defaults.PARTIAL_MIN_SHARE,
        contains_density=defaults.CONTAINS_DENSITY,
        support=bank.needs_support,
        similarity_scale=10.0**defaults.SIMILARITY_DECIMALS,
    )
    out = sparse.Alignments(
        similarity=np.zeros((len(frags), bank.n_templates)),
        transposition=np.zeros((len(frags), bank.n_templates), dtype=np.int64),
        shift=np.zeros((len(frags), bank.n_templates), dtype=np.int64),
    )
    sparse.match_runs(fragments, templates, search, out)
    columns = bank.template_of
    for j, b in enumerate(present):
        sims[b, columns] = out.similarity[j]
        trans[b, columns] = out.transposition[j]
        shifts[b, columns] = out.shift[j] + _present(prepared, b).first_step


@dataclass(frozen=True)
class _Segment:
    fragment: int  # index into the batch
    offset: int  # fragment step (from the first onset) where this segment's data begins
    lo: int  # owned local shifts: [lo, hi)
    hi: int


def _segments(prepared: Sequence[_Fragment | None], bank: TemplateBank) -> dict[int, list[_Segment]]:
    """Split fragments into overlap-save segments grouped by FFT length.

    A segment owning local shifts [lo, hi) needs fragment data [lo, hi - 1 + T_E) and, to avoid circular
    wrap-around, an FFT length of at least that data length plus T_E - 1. A fragment shorter than T_E always
    fits one segment, so a box spanning a whole fragment always lies in one segment's data.
    """
    span = bank.max_length
    longest = _fft_length(4 * span)
    hop = longest - 2 * span + 2  # owned shifts per segment at the longest FFT length
    groups: dict[int, list[_Segment]] = {}
    for b, frag in enumerate(prepared):
        if frag is None:
            continue
        length = frag.roll.shape[1]
        needed = length + span - 1
        if needed <= longest:
            groups.setdefault(_fft_length(needed), []).append(_Segment(b, 0, -(span - 1), length))
            continue
        for offset in range(0, length, hop):
            lo = -(span - 1) if offset == 0 else 0
            hi = min(hop, length - offset)
            groups.setdefault(longest, []).append(_Segment(b, offset, lo, hi))
    return groups


def _match_group(
    group: list[_Segment],
    prepared: Sequence[_Fragment | None],
    bank: TemplateBank,
    transpose_range: int,
    fft_length: int,
    sims: np.ndarray,
    trans: np.ndarray,
    shifts: np.ndarray,
) -> None:
    """Score every segment of one FFT length against every template; keep each (fragment, template) best."""
    xp = bank.xp
    fft = fft_module(xp)
    spectra = bank.spectra(fft_length)
    support_spectra = bank.spectra(fft_length, support=True) if bank.needs_support else None
    n_t = 2 * transpose_range + 1
    t_values = _transpositions(transpose_range)
    row_offset = t_values + transpose_range  # data row of band row 0 at each transposition, (n_t,)
    rows = bank.band + 2 * transpose_range  # fragment rows band_lo - R .. band_hi + R - 1
    toeplitz = to_device(xp, row_offset[:, None] + np.arange(bank.band)[None, :])  # (n_t, P)
    local_shift = np.arange(fft_length) - (bank.max_length - 1)  # shift d of output k (see TemplateBank.spectra)
    src_lo = bank.band_lo - transpose_range  # MIDI pitch of data row 0
    lo, hi = max(src_lo, 0), min(src_lo + rows, N_PITCHES)

    per_block = max(1, defaults.ENGINE_BLOCK_ELEMENTS // (TEMPLATE_CHUNK * n_t * fft_length))
    for s0 in range(0, len(group), per_block):
        block = group[s0 : s0 + per_block]
        frags = [_present(prepared, seg.fragment) for seg in block]
        data = np.zeros((len(block), rows, fft_length), dtype=np.float32)
        for j, (seg, frag) in enumerate(zip(block, frags, strict=True)):
            piece = frag.roll[lo:hi, seg.offset : seg.offset + fft_length - bank.max_length + 1]
            data[j, lo - src_lo : hi - src_lo, : piece.shape[1]] = piece
        data_dev = to_device(xp, data)
        squares = data_dev * data_dev
        rows_cumsum = xp.concatenate(
            [xp.zeros_like(squares[:, :1]), xp.cumsum(squares, axis=1)], axis=1
        )  # (Bs, rows+1, L)
        frag_len = np.array([f.roll.shape[1] for f in frags])
        row_energy = None
        if (frag_len < bank.max_length).any():  # some window spans a whole fragment
            # Each data row's energy over all its steps, summed over the rows below (Bs, rows + 1); float64, so
            # that a quiet box's energy is not the difference of two loud float32 sums.
            row_energy = np.zeros((len(block), rows + 1))
            row_energy[:, 1:] = np.cumsum((data.astype(np.float64) ** 2).sum(axis=-1), axis=1)
            row_energy = to_device(xp, row_energy)
        spectrum = fft.rfft(data_dev, axis=-1, **fft_workers(xp)).astype(xp.complex64)  # (Bs, rows, F)
        # (F, Bs * n_t, P): for each frequency bin, every segment's pitch rows at every transposition.
        stack = _toeplitz_stack(spectrum, toeplitz, bank.band)
        square_stack = None
        if support_spectra is not None:
            square_stack = _toeplitz_stack(
                fft.rfft(squares, axis=-1, **fft_workers(xp)).astype(xp.complex64), toeplitz, bank.band
            )
        owned = to_device(xp, np.array([(local_shift >= seg.lo) & (local_shift < seg.hi) for seg in block]))  # (Bs, L)
        for c, chunk in enumerate(spectra):
            m0 = c * TEMPLATE_CHUNK
            m1 = m0 + chunk.shape[-1]
            sim = _correlate(xp, fft, stack, chunk, len(block), n_t, fft_length)  # c / |E|, (Bs, Mc, n_t, L)
            on_cells = None
            if square_stack is not None and support_spectra is not None and bank.contains[m0:m1].any():
                on_cells = _correlate(xp, fft, square_stack, support_spectra[c], len(block), n_t, fft_length)
            inv_f, e_scale = _window_scales(
                xp, rows_cumsum, row_energy, row_offset, frag_len, owned, bank, m0, m1, fft_length
            )
            _similarity(xp, sim, inv_f, e_scale, bank.norm[m0:m1], bank.contains[m0:m1], on_cells)
            flat = sim.reshape(len(block), m1 - m0, -1)
            # Chosen on rounded values, so that alignments tied in exact arithmetic tie here too, whatever the
            # float noise, and the order of the axes decides: the smallest transposition, then the earliest shift.
            best = xp.argmax(xp.round(flat, defaults.SIMILARITY_DECIMALS), axis=-1)
            best_sim = np.clip(
                to_host(xp.take_along_axis(flat, best[..., None], axis=-1)[..., 0]).astype(np.float64), 0.0, 1.0
            )
            best = to_host(best)
            best_t = t_values[best // fft_length]
            best_shift = local_shift[best % fft_length]
            columns = bank.template_of[m0:m1]
            for j, seg in enumerate(block):
                b = seg.fragment
                shift = _present(prepared, b).first_step + seg.offset + best_shift[j]
                # Segments of one long fragment meet here: the same order decides between them as within one.
                better = _precedes(
                    best_sim[j], best_t[j], shift, sims[b, columns], trans[b, columns], shifts[b, columns]
                )
                sims[b, columns] = np.where(better, best_sim[j], sims[b, columns])
                trans[b, columns] = np.where(better, best_t[j], trans[b, columns])
                shifts[b, columns] = np.where(better, shift, shifts[b, columns])


def _precedes(
    sim: np.ndarray, t: np.ndarray, shift: np.ndarray, old_sim: np.ndarray, old_t: np.ndarray, old_shift: np.ndarray
) -> np.ndarray:
    """Whether alignments (sim, t, shift) come before the ones kept so far: a higher similarity on the chosen
    decimals, else (on a tie above 0) a transposition earlier in the order 0, -1, +1, ..., else an earlier shift."""
    key, old_key = np.round(sim, defaults.SIMILARITY_DECIMALS), np.round(old_sim, defaults.SIMILARITY_DECIMALS)
    rank, old_rank = 2 * np.abs(t) - (t < 0), 2 * np.abs(old_t) - (old_t < 0)
    earlier = (rank < old_rank) | ((rank == old_rank) & (shift < old_shift))
    preceding: np.ndarray = (key > old_key) | ((key == old_key) & (key > 0) & earlier)
    return preceding


def _toeplitz_stack(spectrum: Any, toeplitz: Any, band: int) -> Any:
    """(F, Bs * n_t, P) from a (Bs, rows, F) spectrum: per frequency bin, every segment's pitch rows at every
    transposition."""
    n_b, n_f = spectrum.shape[0], spectrum.shape[-1]
    return spectrum[:, toeplitz, :].transpose(3, 0, 1, 2).reshape(n_f, n_b * toeplitz.shape[0], band)


def _correlate(xp: ModuleType, fft: Any, stack: Any, chunk: Any, n_b: int, n_t: int, fft_length: int) -> Any:
    """The correlation of a Toeplitz stack with a chunk of template spectra: (Bs, Mc, n_t, L)."""
    product = xp.matmul(stack, chunk)  # (F, Bs * n_t, Mc)
    product = product.reshape(product.shape[0], n_b, n_t, -1).transpose(1, 3, 2, 0)
    return fft.irfft(product, n=fft_length, axis=-1, **fft_workers(xp))


def _similarity(
    xp: ModuleType, sim: Any, inv_f: Any, e_scale: Any, norm: np.ndarray, contains: np.ndarray, on_cells: Any
) -> None:
    """Turn the correlation over |E| into the similarity, in place (see the module docstring).

    ``sim`` is (Bs, Mc, n_t, L) c / |E|; ``inv_f`` broadcasts to it, 1 / sqrt(F_W) (0 over empty boxes and
    shifts a segment does not own); ``e_scale`` is None where every exemplar lies whole in its window, else
    (Bs, Mc, 1, L) |E| / Ê (1 for 'contains' templates, which take no share floor). ``norm`` (Mc,) and
    ``contains`` (Mc,) are host arrays; ``on_cells`` is the fragment's energy on the templates' cells for
    velocity-weighted rolls (None: binary, where it is c).
    """
    columns = np.flatnonzero(contains)
    if columns.size:  # c / (|E| max(sqrt(S), sqrt(F_W / κ))) = (c / |E|) / max(...)
        cols = to_device(xp, columns)
        over = xp.maximum(sim[:, cols], 0)
        c = over * to_device(xp, norm[columns].astype(np.float32))[None, :, None, None]
        own = c if on_cells is None else xp.maximum(on_cells[:, cols], 0)
        inv = inv_f[:, cols]
        guard = 1.0 / (xp.maximum(inv, 1e-30) * np.float32(np.sqrt(defaults.CONTAINS_DENSITY)))
        held = xp.where(inv > 0, over / xp.maximum(xp.sqrt(own), guard), 0)
    sim *= inv_f  # near-copy: (c / |E|) (|E| / Ê) / sqrt(F_W)
    if e_scale is not None:
        sim *= e_scale
    if columns.size:
        sim[:, cols] = held


def _time_cumsum(xp: ModuleType, per_step: Any, left: int, right: int) -> Any:
    """Cumulative sums along the last axis, with ``left`` zeros before and the total repeated ``right`` times
    after, so that a window that starts before step 0 or ends past the last step needs no clipping."""
    steps = per_step.shape[-1]
    out = xp.empty((*per_step.shape[:-1], left + 1 + steps + right), dtype=per_step.dtype)
    out[..., : left + 1] = 0
    xp.cumsum(per_step, axis=-1, out=out[..., left + 1 : left + 1 + steps])
    out[..., left + 1 + steps :] = out[..., left + steps : left + steps + 1]
    return out


def _window_scales(
    xp: ModuleType,
    rows_cumsum: Any,
    row_energy: Any,
    row_offset: np.ndarray,
    frag_len: np.ndarray,
    owned: Any,
    bank: TemplateBank,
    m0: int,
    m1: int,
    fft_length: int,
) -> tuple[Any, Any]:
    """What turns the correlation over |E| into the similarity for a block of segments against templates
    [m0, m1): 1 / sqrt(F_W), (Bs, Mc, n_t, L), 0 over empty boxes and outside each segment's owned shifts; and
    |E| / Ê, (Bs, Mc, 1, L), or None where every exemplar of the chunk lies whole in its window.

    Where the exemplar is the shorter, W is its box: F_W is shared by every template of one shape, and Ê = |E|.
    Where the fragment is shorter, W spans the whole fragment: F_W depends on the transposition only and Ê on
    the shift only. Output index k is shift d = k - (T_E - 1), so every window starts one step after the
    previous one.
    """
    n_b, n_t, n_l = frag_len.size, row_offset.size, fft_length
    lead = bank.max_length - 1
    owned_f = owned.astype(xp.float32)[:, None, None, :]  # (Bs, 1, 1, L)
    # Exemplar as template, per shape: the fragment's energy in the shape's pitch rows at each transposition
    # (a row gather), summed over [d, d + length): cum[k + length] - cum[k] on a cumsum padded by ``lead`` zeros.
    shape_ids = bank.shape_of[m0:m1]
    first_shape = int(shape_ids[0])
    shapes = bank.shapes[first_shape : int(shape_ids[-1]) + 1]  # stored by shape, so these are contiguous
    usable = np.flatnonzero(shapes[:, 2] <= frag_len.max())
    inverse = xp.zeros((n_b, len(shapes), n_t, n_l), dtype=xp.float32)
    if usable.size:
        r0 = to_device(xp, (shapes[usable, 0, None] + row_offset[None, :]).ravel())
        r1 = to_device(xp, (shapes[usable, 1, None] + row_offset[None, :]).ravel())
        rows = rows_cumsum[:, r1]
        rows -= rows_cumsum[:, r0]
        cum = _time_cumsum(xp, rows.reshape(n_b, usable.size, n_t, -1), lead, bank.max_length)
        windows = xp.lib.stride_tricks.sliding_window_view(cum, n_l, axis=-1)  # (Bs, U, n_t, offsets, L), a view
        box = windows[:, to_device(xp, np.arange(usable.size)), :, to_device(xp, shapes[usable, 2]), :].transpose(
            1, 0, 2, 3
        )
        box -= cum[..., :n_l]
        inverse[:, to_device(xp, usable)] = _inverse_sqrt(xp, box, bank.min_energy) * owned_f
    inv_f = inverse[:, to_device(xp, shape_ids - first_shape)]  # (Bs, Mc, n_t, L)
    # Fragment shorter than the exemplar: the fragment's energy in the exemplar's rows over all its steps, and
    # the exemplar's over its steps [-d, length_b - d), floored at ρ|E|^2. One pass per fragment length.
    lengths = bank.length[m0:m1]
    exemplar_is_template = lengths[None, :] <= frag_len[:, None]  # (Bs, Mc)
    short = ~exemplar_is_template.all(axis=1)
    if not short.any():
        return inv_f, None
    e_scale = xp.ones((n_b, m1 - m0, 1, n_l), dtype=xp.float32)
    k = np.arange(n_l)
    for length in np.unique(frag_len[short]):
        bs = np.flatnonzero(short & (frag_len == length))
        ms = np.flatnonzero(~exemplar_is_template[bs].all(axis=0))  # lengths are equal, so one set fits all
        bs_dev, ms_dev = to_device(xp, bs), to_device(xp, ms)
        q0 = to_device(xp, (bank.pitch_lo[m0 + ms, None] + row_offset[None, :]).ravel())
        q1 = to_device(xp, (bank.pitch_hi[m0 + ms, None] + row_offset[None, :]).ravel())
        whole = (row_energy[bs_dev][:, q1] - row_energy[bs_dev][:, q0]).reshape(bs.size, ms.size, n_t, 1)
        inv_f[bs_dev[:, None], ms_dev[None, :]] = _inverse_sqrt(xp, whole, bank.min_energy) * owned_f[bs_dev]
        partial = ms[~bank.contains[m0 + ms]]  # a pattern is contained whole: for 'contains', Ê = |E|
        if not partial.size:
            continue
        start = to_device(xp, np.clip(lead - k, 0, bank.max_length))
        stop = to_device(xp, np.clip(length + lead - k, 0, bank.max_length))
        cum = bank.time_energy_device[to_device(xp, m0 + partial)]  # (Ms, T_E + 1)
        energy = bank.energy[m0 + partial]
        floor = to_device(xp, (defaults.PARTIAL_MIN_SHARE * energy).astype(np.float32))
        spanned = xp.maximum(xp.take(cum, stop, axis=-1) - xp.take(cum, start, axis=-1), floor[:, None])  # Ê^2, (Ms, L)
        scale = to_device(xp, np.sqrt(energy).astype(np.float32))[:, None] / xp.sqrt(spanned)
        e_scale[bs_dev[:, None], to_device(xp, partial)[None, :]] = scale[None, :, None, :]
    return inv_f, e_scale


def _inverse_sqrt(xp: ModuleType, energy: Any, min_energy: float) -> Any:
    """1 / sqrt(energy), and 0 where the box is empty."""
    safe = xp.maximum(energy, min_energy)
    return xp.where(energy > min_energy, 1.0 / xp.sqrt(safe), 0.0).astype(xp.float32)


def _best_stretch(sims: np.ndarray, bank: TemplateBank) -> np.ndarray:
    """(B, K) the stretch index picked for each exemplar: the best, preferring stretches nearest 1 among ties
    (within 1e-5)."""
    n_frag, n_ex, n_st = sims.shape[0], bank.n_exemplars, bank.stretch_count
    order = np.argsort(np.abs(np.log(np.asarray(bank.stretches))), kind="stable")
    # Stretches within 1e-5 of the best tie: float32 noise (up to ~2e-6 with velocities) must not decide
    # between stretches that match equally well in exact arithmetic.
    sim3 = sims.reshape(n_frag, n_ex, n_st)[:, :, order]
    tied = sim3 >= sim3.max(axis=-1, keepdims=True) - 10.0**-defaults.SIMILARITY_DECIMALS
    picked: np.ndarray = order[np.argmax(tied, axis=-1)]  # the first tied stretch is the one nearest 1
    return picked


def _reported(
    pick: np.ndarray,
    sims: np.ndarray,
    trans: np.ndarray,
    shifts: np.ndarray,
    prepared: Sequence[_Fragment | None],
    bank: TemplateBank,
) -> BestMatches:
    """Reduce templates (k, s) to exemplars k at the picked stretches, with each best alignment's coverage."""
    template = np.arange(bank.n_exemplars)[None, :] * bank.stretch_count + pick  # (B, K)
    similarity, transpose, shift = (np.take_along_axis(a, template, axis=1) for a in (sims, trans, shifts))
    coverage = np.zeros_like(similarity)
    for b, frag in enumerate(prepared):
        if frag is not None:
            coverage[b] = _coverage(frag, bank, bank.position_of[template[b]], transpose[b], shift[b] - frag.first_step)
    coverage[similarity <= 0] = 0.0
    return BestMatches(similarity, transpose, shift, np.asarray(bank.stretches)[pick], coverage)


#: Runs times templates handled at once when computing coverage.
_COVERAGE_BLOCK = 1 << 22


def _coverage(
    frag: _Fragment, bank: TemplateBank, stored: np.ndarray, transpose: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """(K,) share of the fragment's energy in the window W of each alignment: template ``stored`` (positions)
    at transposition ``transpose`` and local shift ``shift`` (steps from the fragment's first onset)."""
    row, on, off, value = frag.runs
    steps = frag.roll.shape[1]
    lo = bank.band_lo + bank.pitch_lo[stored] + transpose
    hi = bank.band_lo + bank.pitch_hi[stored] + transpose
    length = bank.length[stored]
    inside = length <= steps  # the exemplar's box, else the whole fragment's span
    j0 = np.where(inside, np.clip(shift, 0, steps), 0)
    j1 = np.where(inside, np.clip(shift + length, 0, steps), steps)
    out = np.zeros(stored.size)
    per = max(1, _COVERAGE_BLOCK // max(1, row.size))
    for k0 in range(0, stored.size, per):
        s = slice(k0, k0 + per)
        in_rows = (row[None, :] >= lo[s, None]) & (row[None, :] < hi[s, None])
        overlap = np.clip(np.minimum(off[None, :], j1[s, None]) - np.maximum(on[None, :], j0[s, None]), 0, None)
        out[s] = (in_rows * overlap * value[None, :] ** 2).sum(axis=1)
    return np.clip(out / frag.energy, 0.0, 1.0)
