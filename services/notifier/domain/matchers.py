"""Label matchers, as Alertmanager has them: `=`, `!=`, `=~`, `!~` (pure).

A missing label reads as the empty string, and regexes are anchored at both
ends (`=~ "w.*"` matches "w1", not "rw1"), so a matcher means the same here
as in an Alertmanager route or silence. Channels' contract `matchers` object
(label -> exact value) is the `=` case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["OPERATORS", "Matcher", "MatcherError", "matches_all", "parse_matcher_text", "parse_matchers"]

OPERATORS: Final = ("=", "!=", "=~", "!~")
MAX_PATTERN_CHARS: Final = 1_000
# Alertmanager's text form: name, operator, value (double-quoted with \" and \\ escapes, or bare).
_TEXT: Final = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"]*?))\s*$')


class MatcherError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    value: str
    op: str = "="
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, value: str, op: str = "=", where: str = "matchers") -> Matcher:
        if op not in OPERATORS:
            raise MatcherError(f"{where}.op", f"must be one of {', '.join(OPERATORS)}")
        if not name:
            raise MatcherError(f"{where}.name", "must not be empty")
        pattern = None
        if op in ("=~", "!~"):
            if len(value) > MAX_PATTERN_CHARS:
                raise MatcherError(f"{where}.value", f"a pattern of at most {MAX_PATTERN_CHARS} characters")
            try:
                pattern = re.compile(f"(?:{value})")
            except re.error as exc:
                raise MatcherError(f"{where}.value", f"not a regular expression: {exc}") from exc
        return cls(name, value, op, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._pattern is not None
        found = self._pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "op": self.op}


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def parse_matcher_text(text: str, where: str = "matchers") -> Matcher:
    """`alertname="pool hashrate drop"`, `severity=~"warning|critical"`, `pool != test`."""
    found = _TEXT.match(text)
    if found is None:
        raise MatcherError(where, f"{text!r} is not a matcher (name, one of {', '.join(OPERATORS)}, value)")
    name, op, quoted, bare = found.groups()
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return Matcher.of(name, value, op, where)


def parse_matchers(raw: Any, where: str = "matchers") -> tuple[Matcher, ...]:
    """From the contract's object (label -> exact value), or a list of {name, value, op} or of
    Alertmanager's text matchers."""
    if isinstance(raw, Mapping):
        return tuple(Matcher.of(str(name), str(value), "=", f"{where}.{name}") for name, value in raw.items())
    if isinstance(raw, list):
        out = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                out.append(parse_matcher_text(item, f"{where}.{i}"))
                continue
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) \
                    or not isinstance(item.get("value"), str):
                raise MatcherError(f"{where}.{i}", "a matcher is {name, value, op}")
            out.append(Matcher.of(item["name"], item["value"], str(item.get("op", "=")), f"{where}.{i}"))
        return tuple(out)
    raise MatcherError(where, "an object (label -> value) or a list of {name, value, op}")
