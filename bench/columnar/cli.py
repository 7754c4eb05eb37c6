"""The command line the prototype benchmarks share: `verify` against the service's class, or `time`
both in the same run; one JSON line out, exit 1 on a mismatch."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def run(verify: Callable[[int, int], dict[str, Any]], timed: Callable[[int, int], dict[str, Any]],
        mismatch: type[Exception]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("verify", "time"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keys", type=int, default=100_000)
    args = p.parse_args()
    try:
        result = verify(args.seeds, args.batches) if args.mode == "verify" else timed(args.runs, args.keys)
    except mismatch as exc:
        print(json.dumps({"mode": args.mode, "ok": False, "error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0
