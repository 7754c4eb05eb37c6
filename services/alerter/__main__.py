"""`python -m services.alerter` (or `chimera alerter`): evaluate alert rules until SIGTERM.

Kafka or PostgreSQL not up yet: it waits for them (shared/startup.py), saying what failed.
SIGTERM or Ctrl-C: the faust worker stops (the transitions it made are
stored), the relay and the producer flush; exit 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.entrypoint import run_until_signalled

from .bootstrap import bootstrap
from .config import AlerterSettings


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # settings come from the environment only
    return run_until_signalled("alerter", AlerterSettings, bootstrap)


if __name__ == "__main__":
    sys.exit(main())
