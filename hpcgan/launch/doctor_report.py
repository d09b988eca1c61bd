"""What `hpcgan doctor` found: one Check per line, ok / warn / fail / skip, with the fix when not ok."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

STATUSES = ("ok", "warn", "fail", "skip")  # skip: a check that cannot run here (one node: no all-reduce)
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@dataclass
class Check:
    status: str  # one of STATUSES
    name: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Check status {self.status!r}: expected one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def line(check: Check) -> str:
    """`ok    name                 detail  fix: ...` (plain text; the console adds the colour)."""
    fix = f"  fix: {check.fix}" if check.fix and check.status in ("warn", "fail") else ""
    return f"{check.status:<5} {check.name:<20} {check.detail}{fix}"


def print_checks(checks: list[Check], console: Console | None = None) -> None:
    """One line per check on stdout (the result of the command), never wrapped: details hold paths."""
    out = console or Console(soft_wrap=True, highlight=False)
    for check in checks:
        text = escape(line(check))
        out.print(f"[{_STYLE[check.status]}]{text[:5]}[/]{text[5:]}")


def exit_code(checks: list[Check]) -> int:
    """1 when any check failed (warnings and skips pass), else 0."""
    return 1 if any(c.status == "fail" for c in checks) else 0
