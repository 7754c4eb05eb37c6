"""Exact per-group sums of difficulty units (2**-80) with float64 bincounts (columnar fold).

`fold_shares` adds `int(d * 2**80)` per accepted share as a Python int: exact and
order-free (domain/minutes.py). Here each event's units are written as
m << s (m < 2**53, s >= 0) and split into three 32-bit limbs at absolute bit
positions 32*j. Every limb is below 2**32, so a bincount of at most 2**21 of them
stays below 2**53: float64 adds those integers exactly, in any order. Only the
per-group limb sums become Python ints.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_EVENTS", "group_units", "unit_parts"]

MAX_EVENTS: Final = 1 << 21  # limb sums stay below 2**53 (exact in float64)
_SCALE: Final = float(2**80)
_MASK32: Final = np.int64(0xFFFFFFFF)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def unit_parts(difficulty: F64) -> tuple[I64, I64]:
    """(m, s) with int(d * 2**80) == m << s for every element; m < 2**53, s >= 0."""
    with np.errstate(over="ignore"):
        scaled = np.trunc(difficulty * _SCALE)  # exact: a power-of-two scale, then int()'s truncation
    if not np.isfinite(scaled).all():
        raise OverflowError("difficulty * 2**80 is not finite")  # as int(inf) in fold_shares
    mant, exp = np.frexp(scaled)
    shift = np.maximum(exp.astype(np.int64) - 53, 0)
    m = np.ldexp(mant, (exp - shift).astype(np.int32)).astype(np.int64)  # an integer < 2**53
    return m, shift


def group_units(inverse: I64, groups: int, m: I64, shift: I64) -> list[int]:
    """Per group g, the exact sum of m[i] << shift[i] over the i with inverse[i] == g."""
    n = len(inverse)
    if n > MAX_EVENTS:
        raise ValueError(f"at most {MAX_EVENTS} events per call")
    if n == 0:
        return [0] * groups
    limb = shift >> 5
    r = shift & 31
    low_bits = 32 - r
    piece0 = (m & ((np.int64(1) << low_bits) - 1)) << r
    rest = m >> low_bits
    piece1 = rest & _MASK32
    piece2 = rest >> 32
    base = int(limb.min())
    width = int(limb.max()) - base + 3
    slot = inverse * width + (limb - base)
    size = groups * width
    sums = np.bincount(slot, piece0, size)
    sums[1:] += np.bincount(slot, piece1, size)[:-1]  # limb j+1 is the next slot
    sums[2:] += np.bincount(slot, piece2, size)[:-2]
    # Still exact: an event adds at most one piece (< 2**32) to a slot, so every partial
    # sum stays below n * 2**32 <= 2**53.
    table = sums.astype(np.int64).reshape(groups, width)
    out = [0] * groups
    for k in range(width):
        column = table[:, k]
        if not column.any():
            continue
        at = 32 * (base + k)
        out = [u + (c << at) for u, c in zip(out, column.tolist(), strict=True)]
    return out
