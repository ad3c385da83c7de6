"""The markov generator: a variable-order Markov model of the good exemplars' own voices, with MaxOrder's bound.

Each voice of each good exemplar (:func:`rollmatch.notes.split_voices`) becomes a sequence of tokens
(interval from the voice's previous note in semitones, length in grid steps). The model counts which token
follows every context of up to ``order`` tokens. A candidate bar follows a phrase plan shared with the
variation generator (:func:`rollmatch.generators.plan_bars`): the bar of an exemplar that goes on with the
phrase, or a phrase start at a fitting transposition. Its harmony is the plan's; its surface is the model's.
Each voice walks the plan's notes, and a note is *re-surfaced*, split into two whose second is drawn from the
model given the voice's context, when a coin says so (:data:`RESURFACE_RATE`) and always when keeping it would
copy more than ``max_order`` tokens of the exemplars in a row; a forced note that no split fits holds the
voice's previous pitch instead. That last rule is the MaxOrder bound
(Papadopoulos, Roy & Pachet, AAAI 2014): no voice copies a chunk of more than ``max_order`` notes. A note that
must be re-surfaced and cannot be leaves the candidate out.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Sequence

import numpy as np

from . import defaults
from .checks import whole_number
from .errors import GeneratorError
from .generators import Context, Material, Proposal, SourceRef, plan_bars, transpose_bar
from .notes import NOTE_DTYPE, note_order

#: The chance that a note the bound does not force is re-surfaced anyway.
RESURFACE_RATE = 0.15
#: The widest interval (semitones) a re-surfaced note may leave to the plan's next note of its voice.
MAX_RETURN = 4

Token = tuple[int, int]  #: (interval in semitones from the voice's previous note, length in grid steps)


class MarkovModel:
    """Counts of the token that follows each context of up to ``order`` tokens, over every voice of the good
    exemplars, and the (max_order + 1)-token chunks they hold, which no generated voice may repeat."""

    def __init__(
        self,
        lines: Sequence[Sequence[Token]],
        *,
        order: int = defaults.MARKOV_ORDER,
        max_order: int = defaults.MARKOV_MAX_ORDER,
    ) -> None:
        self.order = whole_number(order, "order", at_least=0, at_most=defaults.MAX_MARKOV_ORDER)
        self.max_order = whole_number(max_order, "max_order", at_least=1, at_most=defaults.MAX_MARKOV_MAX_ORDER)
        self.follows: dict[tuple[Token, ...], Counter[Token]] = {}
        self.chunks: set[tuple[Token, ...]] = set()
        for line in lines:
            for i, token in enumerate(line):
                for k in range(0, min(self.order, i) + 1):
                    self.follows.setdefault(tuple(line[i - k : i]), Counter())[token] += 1
                if i >= self.max_order:
                    self.chunks.add(tuple(line[i - self.max_order : i + 1]))

    @classmethod
    def from_material(cls, material: Material, **options: int) -> MarkovModel:
        steps = defaults.STEPS_PER_BEAT
        lines = []
        for (_, notes), voices in zip(material.exemplars, material.voices, strict=True):
            for v in np.unique(voices):
                line = np.sort(notes[voices == v], order="start")
                lines.append(tokens(line, steps))
        return cls(lines, **options)

    def distribution(self, context: Sequence[Token]) -> Counter[Token]:
        """What follows the longest suffix of ``context`` (up to ``order`` tokens) seen in the exemplars."""
        for k in range(min(self.order, len(context)), -1, -1):
            found = self.follows.get(tuple(context[len(context) - k :]))
            if found:
                return found
        return Counter()

    def copies(self, line: Sequence[Token]) -> bool:
        """Whether the last max_order + 1 tokens of ``line`` are a chunk of the exemplars."""
        return len(line) > self.max_order and tuple(line[-self.max_order - 1 :]) in self.chunks


def tokens(line: np.ndarray, steps_per_beat: int, previous: int | None = None) -> list[Token]:
    """The tokens of one voice's notes (sorted by start), the first one's interval from ``previous`` (0
    when None)."""
    out = []
    for n in line:
        pitch = int(n["pitch"])
        out.append(
            (0 if previous is None else pitch - previous, max(1, round(float(n["end"] - n["start"]) * steps_per_beat)))
        )
        previous = pitch
    return out


#: One model per material, kept only as long as the material is.
_MODELS: weakref.WeakKeyDictionary[Material, MarkovModel] = weakref.WeakKeyDictionary()


def _model(material: Material) -> MarkovModel:
    if material not in _MODELS:
        _MODELS[material] = MarkovModel.from_material(material)
    return _MODELS[material]


def markov(context: Context, rng: np.random.Generator) -> list[Proposal]:
    """Candidates whose voices follow a phrase plan, re-surfaced by the Markov model under the MaxOrder bound
    (see the module's description)."""
    material = context.material
    if not material.bars:
        raise GeneratorError("the library has no good exemplars for the markov generator to draw on")
    model = _model(material)
    out = []
    for index, shift in plan_bars(context, rng, context.count):
        source = material.bars[index]
        made = resurface(model, transpose_bar(source.notes, shift), source.voices, context, rng)
        if made is not None:
            notes, voices, changed = made
            out.append(
                Proposal(
                    notes,
                    voices,
                    (SourceRef(source.exemplar, source.index, shift),),
                    (f"markov: {changed} notes re-surfaced",),
                )
            )
    return out


def resurface(
    model: MarkovModel, notes: np.ndarray, voices: np.ndarray, context: Context, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The bar ``notes`` (with ``voices``) re-surfaced voice by voice, and how many notes were; None when a
    note the MaxOrder bound forces cannot be."""
    steps = defaults.STEPS_PER_BEAT
    piece_voices = context.piece_voices
    rows: list[tuple[int, float, float, int, int]] = []
    changed = 0
    for v in np.unique(voices):
        line = np.sort(notes[voices == v], order="start")
        before = np.sort(context.notes[piece_voices == v], order="start")[-model.max_order - 1 :]
        history = tokens(before, steps)
        previous = int(before["pitch"][-1]) if before.size else None
        for i, n in enumerate(line):
            pitch, start, end, velocity = int(n["pitch"]), float(n["start"]), float(n["end"]), int(n["velocity"])
            kept = (0 if previous is None else pitch - previous, max(1, round((end - start) * steps)))
            forced = model.copies([*history, kept])
            if forced or rng.random() < RESURFACE_RATE:
                following = int(line["pitch"][i + 1]) if i + 1 < line.size else None
                split = _split(model, history, pitch, previous, end - start, following, rng)
                if split is not None:
                    first, second = split
                    interval, length = second
                    cut = end - length / steps
                    rows += [(pitch, start, cut, velocity, int(v)), (pitch + interval, cut, end, velocity, int(v))]
                    history += [first, second]
                    previous = pitch + interval
                    changed += 1
                    continue
                if forced:
                    held = (0, kept[1])
                    if previous is None or model.copies([*history, held]):
                        return None
                    # nothing splits it: the voice holds its previous pitch instead (an anticipation held back)
                    rows.append((previous, start, end, velocity, int(v)))
                    history.append(held)
                    changed += 1
                    continue
            rows.append((pitch, start, end, velocity, int(v)))
            history.append(kept)
            previous = pitch
    out = np.zeros(len(rows), dtype=NOTE_DTYPE)
    table = np.array([r[:4] for r in rows], dtype=np.float64)
    out["pitch"], out["start"], out["end"], out["velocity"] = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
    out_voices = np.array([r[4] for r in rows], dtype=np.int64)
    order = note_order(out)
    return out[order], out_voices[order], changed


def _split(
    model: MarkovModel,
    history: list[Token],
    pitch: int,
    previous: int | None,
    beats: float,
    following: int | None,
    rng: np.random.Generator,
) -> tuple[Token, Token] | None:
    """A note of ``pitch`` lasting ``beats`` split in two: the tokens of the two parts, the second drawn from the
    model given the context; None when nothing fits."""
    steps = defaults.STEPS_PER_BEAT
    total = max(1, round(beats * steps))
    interval_in = 0 if previous is None else pitch - previous
    options: list[tuple[Token, Token]] = []
    weights: list[float] = []
    for length in range(1, total):
        first = (interval_in, total - length)
        if first not in model.follows[()]:
            continue  # the first part must itself be a token the exemplars hold
        for (interval, size), count in model.distribution([*history, first]).items():
            if size != length or interval == 0:
                continue
            if following is not None and abs(following - (pitch + interval)) > MAX_RETURN:
                continue
            if not 0 <= pitch + interval <= 127 or model.copies([*history, first, (interval, size)]):
                continue
            options.append((first, (interval, size)))
            weights.append(float(count))
    if not options:
        return None
    p = np.array(weights) / sum(weights)
    return options[int(rng.choice(len(options), p=p))]
