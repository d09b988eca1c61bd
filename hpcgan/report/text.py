"""Numbers and times as the pages print them, and sentences with a few styled words.

A sentence is a tuple of Parts, so the view decides what it says and which words are code or bold,
and the template's `rich` macro turns it into markup (escaped, like every other value)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from hpcgan.report.collect import FidPoint, number

MISSING = "–"


@dataclass(frozen=True)
class Part:
    text: str
    style: str = ""  # "" plain, "b" bold, "code", or an event kind (stopped, restart, ...) coloured as such


Rich = tuple[Part, ...]


def rich(*parts: str | Part) -> Rich:
    return tuple(p if isinstance(p, Part) else Part(p) for p in parts if p)


def bold(text: str) -> Part:
    return Part(text, "b")


def code(text: str) -> Part:
    return Part(text, "code")


def kind(text: str, name: str) -> Part:
    return Part(text, name)


def fmt(value: Any, spec: str = ".3g", missing: str = MISSING) -> str:
    v = number(value)
    return missing if v is None else format(v, spec)


def fid(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}" if value >= 10 else f"{value:.3f}"


def when(t: Any) -> str:
    v = number(t)
    if v is None:
        return MISSING
    return datetime.datetime.fromtimestamp(v).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def source(p: FidPoint) -> str:
    return "hpcgan eval" if p.source == "eval" else "in training"


def config_value(value: Any) -> str:
    """Config values as one would type them in key=value (strings unquoted unless empty)."""
    return value if isinstance(value, str) and value else json.dumps(value)


def listing(items: list[str], last: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}" if items else ""
