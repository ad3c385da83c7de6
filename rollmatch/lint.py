"""Lint an exemplar library: what ``rollmatch library check`` reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .library import Library


@dataclass(frozen=True)
class Finding:
    """One problem found in a library: a stable ``code`` (e.g. 'near-duplicate'), the exemplar ids it
    concerns (may be empty for library-wide problems) and a one-line ``message`` for people."""

    code: str
    message: str
    exemplars: tuple[str, ...] = ()


def check_library(library: Library) -> list[Finding]:
    """Placeholder until the lint lands: reports nothing."""
    del library
    return []
