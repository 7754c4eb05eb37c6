"""Exact per-group difficulty sums: the service's own (services/aggregator/consume/columnar_units.py)."""

from services.aggregator.consume.columnar_units import MAX_EVENTS, group_units, unit_parts

__all__ = ["MAX_EVENTS", "group_units", "unit_parts"]
