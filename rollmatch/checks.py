"""Scalar checks for every boundary. Each error names the value, e.g. ``stretch=0 must be > 0``."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from .errors import ParameterError


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, Real) and not isinstance(value, bool) else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def number(
    value: Any,
    name: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> float:
    """``value`` as a float if it is a finite number within the bounds, else :class:`ParameterError`."""
    if not _is_number(value):
        raise ParameterError(f"{name}={_shown(value)} must be a finite number")
    low_ok = (above is None or value > above) and (at_least is None or value >= at_least)
    if low_ok and (at_most is None or value <= at_most):
        return float(value)
    if at_most is None:
        bound = f"> {above:g}" if above is not None else f">= {at_least:g}"
    elif above is not None:
        bound = f"in ({above:g}, {at_most:g}]"
    else:
        bound = f"within [{at_least:g}, {at_most:g}]"
    raise ParameterError(f"{name}={_shown(value)} must be {bound}")


def whole_number(value: Any, name: str, *, at_least: int, at_most: int) -> int:
    """``value`` as an int if it is a whole number within [at_least, at_most], else :class:`ParameterError`."""
    if not _is_number(value) or value != int(value) or not at_least <= value <= at_most:
        raise ParameterError(f"{name}={_shown(value)} must be a whole number within {at_least}-{at_most}")
    return int(value)
