"""A pool's variable difficulty for one worker (pure; times in ms).

The pool cannot see a worker's hashrate, only its shares: over a window it
estimates hashrate as difficulty-weighted shares per second and sets the
difficulty that would give `share_rate` shares per second at that hashrate,
on a ladder of powers of two (see VardiffConfig for the rules).
"""

from __future__ import annotations

import math

from chimera.simulate.config import HASHES_PER_DIFFICULTY, VardiffConfig

__all__ = ["Vardiff", "ideal_difficulty"]


def ideal_difficulty(hashrate_hs: float, config: VardiffConfig) -> float:
    """The difficulty at which `hashrate_hs` yields the target share rate, on the pool's ladder."""
    return _settle(hashrate_hs / (config.share_rate * HASHES_PER_DIFFICULTY), config)


def _settle(difficulty: float, config: VardiffConfig) -> float:
    if config.rounding == "pow2" and difficulty > 0:
        difficulty = 2.0 ** round(math.log2(difficulty))
    return min(config.max_difficulty, max(config.min_difficulty, difficulty))


class Vardiff:
    def __init__(self, config: VardiffConfig, difficulty: float, now_ms: float) -> None:
        self._config = config
        self.difficulty = _settle(difficulty, config)
        # At least four windows' worth of target shares, so a fast target rate is not a "flood".
        self._flood = max(config.flood_shares,
                          math.ceil(4 * config.share_rate * config.retarget_ms / 1000))
        self.restart(now_ms)

    def restart(self, now_ms: float) -> None:
        """A new window from `now_ms` (after a retarget or a reconnect)."""
        self._window_start = now_ms
        self._shares = 0
        self.next_check_ms = now_ms + self._config.retarget_ms

    def on_share(self, now_ms: float) -> bool:
        """Count a submitted share; True when it retargeted (a flood of shares does not wait)."""
        self._shares += 1
        if self._shares >= self._flood:
            return self._retarget(now_ms, force=True)
        return False

    def on_check(self, now_ms: float) -> bool:
        """The periodic check at `next_check_ms`; True when the difficulty changed."""
        return self._retarget(now_ms, force=False)

    def _retarget(self, now_ms: float, *, force: bool) -> bool:
        config = self._config
        elapsed_s = (now_ms - self._window_start) / 1000
        if self._shares == 0:
            # Not one share in a whole interval: far too hard; step down fast.
            target = self.difficulty / 4
        elif (not force and self._shares < config.min_shares
              and now_ms - self._window_start < 4 * config.retarget_ms):
            self.next_check_ms = now_ms + config.retarget_ms  # too few shares to judge yet
            return False
        else:
            target = self.difficulty * self._shares / max(elapsed_s, 1e-3) / config.share_rate
            if abs(math.log2(target / self.difficulty)) <= config.tolerance_log2:
                target = self.difficulty
        new = _settle(target, config)
        changed = new != self.difficulty
        self.difficulty = new
        self.restart(now_ms)
        return changed
