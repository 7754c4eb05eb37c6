"""Inhibition rules from their YAML file (deploy/notifier/inhibit_rules.yaml), read at start."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..domain.matchers import MatcherError
from ..domain.routing import InhibitRule, parse_inhibit_rules

__all__ = ["InhibitRulesError", "load_inhibit_rules"]


class InhibitRulesError(Exception):
    """The file cannot be used; fails the start-up naming the file and what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"NOTIFIER_INHIBIT_RULES_FILE {path}: {reason}")
        self.path = path
        self.reason = reason


def load_inhibit_rules(path: Path | None) -> tuple[InhibitRule, ...]:
    if path is None:
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InhibitRulesError(path, str(exc)) from exc
    try:
        return parse_inhibit_rules(data or {})
    except MatcherError as exc:
        raise InhibitRulesError(path, str(exc)) from exc
