"""A columnar share fold, prototyped beside the aggregator (not wired into services/).

decode.py: a batch of record values -> share columns (msgspec + batch-wide checks,
the contract's models still the authority for anything not proven valid);
prefilter.py: dedup and lateness as array operations; fold.py: the per
(pool, miner, worker, minute) group-by; units.py: exact difficulty sums per group.
"""
