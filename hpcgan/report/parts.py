"""View pieces both pages use: stat cards, badges, links, notices and plain tables. Every field is
text (already formatted); the templates escape and lay them out."""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcgan.report.text import Rich


@dataclass(frozen=True)
class Stat:
    label: str
    value: str
    sub: str = ""


@dataclass(frozen=True)
class Badge:
    text: str
    css: str  # completed | running | stopped | pending | not-started | collapsed


def state_badge(state: str) -> Badge:
    return Badge(state, state.replace(" ", "-"))


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative to the page
    detail: str = ""


@dataclass(frozen=True)
class Header:
    title: str
    badges: list[Badge] = field(default_factory=list)
    kind: str = ""  # a muted word after the title ("sweep")
    sub: str = ""
    path: str = ""
    up: Link | None = None  # the sweep page a run page belongs to


@dataclass(frozen=True)
class Notice:
    text: Rich
    css: str = "notice"  # notice (yellow, a fact) | verdict low | verdict collapsed ...


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()  # column indexes aligned right
    css: str = ""


@dataclass(frozen=True)
class Grid:
    """A sample grid (or the real-image grid) on the page."""

    step: int
    thumb: str  # href of the small copy, relative to the page
    full: str  # href of the full-size grid
    width: int = 0  # px of the small copy: below the display width it is upscaled, with crisp pixels
