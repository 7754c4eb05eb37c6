"""The columnar share fold, as the benchmarks and their tests reach it.

Everything but prefilter.ColumnarDedup is the service's own code
(services/aggregator/consume/columnar_*.py, behind AGGREGATOR_FOLD): decode.py,
fold.py, ingest.py and units.py are thin views on it. prefilter.ColumnarDedup is
the array-only dedup prototype the service does NOT use (its buckets expire at
batch boundaries, not event by event: see its docstring).
"""
