"""The contract's figures (docs/contract.md section 2), used by the aggregator and the stats API alike.

- hashrate (H/s) over a span = sum(difficulty of accepted shares) * multiplier / span seconds;
  the multiplier is 2^32 for SHA-256d and a per-pool setting otherwise;
- efficiency = accepted / (accepted + rejected + stale), by share count;
- windows 1m, 5m, 15m, 1h, 24h.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_MULTIPLIER", "LUCK_WINDOWS", "WINDOWS_MS", "efficiency", "hashrate_hs"]

DEFAULT_MULTIPLIER: Final = 2.0**32  # SHA-256d: hashes per unit of difficulty
# Luck is reported over the pool's last n blocks, for each n here.
LUCK_WINDOWS: Final = (64, 128, 256)

_MINUTE_MS: Final = 60_000
WINDOWS_MS: Final[dict[str, int]] = {
    "1m": _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "1h": 60 * _MINUTE_MS,
    "24h": 24 * 60 * _MINUTE_MS,
}


def hashrate_hs(difficulty_sum: float, span_ms: int, multiplier: float = DEFAULT_MULTIPLIER) -> float:
    """Hashes per second: sum(difficulty of accepted shares) * multiplier / span in seconds."""
    return difficulty_sum * multiplier * 1000.0 / span_ms


def efficiency(accepted: float, submitted: float) -> float | None:
    """accepted / (accepted + rejected + stale) by count; None when no share was submitted."""
    return accepted / submitted if submitted else None
