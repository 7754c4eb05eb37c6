"""Pure domain of the aggregator: no Kafka, no PostgreSQL, no clock, no I/O.

Time always comes in as integer epoch milliseconds (`*_ms`). Modules:
share (what a share is to the domain), minutes (per-minute stats and the batch
fold), table (absolute resident rows), windows (window ranges and formulas),
accumulator (running window sums), confidence (Garwood intervals), liveness,
blocks (effort and luck), dedup, lateness, figures (window figures as dicts),
model (all of it composed, one per input partition), and what the outputs
compute from models: export_figures, export_selection, export_deadlines,
rollup_plan. Import from the modules themselves; this package exports nothing.
"""
