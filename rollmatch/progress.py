"""Progress bars for long work, through ``tqdm.auto``: a widget in a notebook, a line on a terminal's stderr.

Every function that can take long has a keyword ``progress``: False (the default) shows nothing, True
always shows a bar and None shows one only when stderr is a terminal, as the CLI asks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")

#: The type of every ``progress`` keyword: True, False or None (on a terminal only).
Show = bool | None
#: Show a bar only when stderr is a terminal, as the CLI does.
ON_A_TERMINAL: Show = None


def progress_bar(
    iterable: Iterable[T] | None = None, *, desc: str, show: Show, total: int | None = None, unit: str = "it"
) -> tqdm[T]:
    """A tqdm bar over ``iterable`` (or one to update by hand, of ``total`` steps) that leaves no line behind."""
    from tqdm.auto import tqdm  # noqa: PLC0415  (tqdm.auto loads notebook widgets: only when a bar is made)

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=None if show is None else not show, leave=False)


def for_many(show: Show, count: int) -> Show:
    """``show`` for work on ``count`` items: a bar for one item is noise."""
    return show if count > 1 else False


def write_line(line: str) -> None:
    """Print ``line`` to stdout without breaking a progress bar that is showing on the terminal."""
    from tqdm.auto import tqdm  # noqa: PLC0415  (as above)

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()
