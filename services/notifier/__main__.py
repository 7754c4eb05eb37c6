"""`python -m services.notifier` (or `chimera notifier`): deliver alert notifications until SIGTERM.

Kafka or PostgreSQL not up yet: it waits for them (shared/startup.py), saying what failed.
SIGTERM or Ctrl-C: the faust worker stops (its flushes are stored), the
dispatcher stops (a send in flight is sent again after its lease), the
producer flushes; exit 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.entrypoint import run_until_signalled

from .bootstrap import bootstrap
from .config import NotifierSettings


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # settings come from the environment only
    return run_until_signalled("notifier", NotifierSettings, bootstrap)


if __name__ == "__main__":
    sys.exit(main())
