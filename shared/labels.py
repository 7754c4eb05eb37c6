"""One stable key for a label set within a scope: alert fingerprints, notification groups (pure).

Every part is written with its length in front, so no scope and label set can
spell another's; blake2b of that costs a couple of microseconds. Stable across
processes, restarts and Python versions (no `hash()`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["label_set_key"]


def label_set_key(scope: str, labels: Mapping[str, str]) -> str:
    parts = [f"{len(scope)}:{scope}"]
    for name, value in sorted(labels.items()):
        parts.append(f"{len(name)}:{name}{len(value)}:{value}")
    return hashlib.blake2b("|".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
