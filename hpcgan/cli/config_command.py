"""`hpcgan config [--gan NAME] [key=value ...]`: every config key with its type, its default for the
preset, and its meaning, as a table on stdout. It reads the schema and the presets only: no network
is built and nothing is checked beyond each choice key's choices."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hpcgan.train.config_keys import apply_overrides, check_choices, type_name, walk
from hpcgan.train.config_schema import RunConfig
from hpcgan.train.presets import PRESETS, preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="list every config key: its type, default (for a preset) and meaning")
    p.add_argument("--gan", help=f"show this preset's defaults (without it: the plain ones): {', '.join(PRESETS)}")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="show the values with these overrides applied")
    p.set_defaults(run=run_config)


def run_config(args: argparse.Namespace) -> int:
    config = preset(args.gan) if args.gan else RunConfig()
    apply_overrides(config, args.overrides)
    check_choices(config)
    console = Console()  # the result, on stdout
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # piped (to grep, less): whole rows rather than 80 columns of wrapped cells
    console.print(config_table(config, _title(args)))
    return 0


def _title(args: argparse.Namespace) -> str:
    title = f"--gan {args.gan}" if args.gan else "RunConfig defaults (no --gan)"
    return f"{title} with {' '.join(args.overrides)}" if args.overrides else title


def config_table(config: RunConfig, title: str) -> Table:
    """One row per key, grouped by section; values that differ from the plain defaults are bold."""
    plain = {k.name: k.value for k in walk(RunConfig())}
    table = Table(title=title, title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("type", ratio=1)
    table.add_column("default", no_wrap=True, overflow="fold")
    table.add_column("meaning", ratio=2, overflow="fold")
    sections = {f.name: f.metadata["help"] for f in dataclasses.fields(config)
                if dataclasses.is_dataclass(getattr(config, f.name))}  # fmt: skip
    current = ""
    for k in walk(config):
        name = k.name.partition(".")[0] if "." in k.name else ""
        if name != current:  # a section starts: a rule, then its name and meaning
            table.add_section()
            table.add_row(Text(name, style="bold"), "", "", Text(sections[name], style="italic"))
            current = name
        style = "bold" if k.value != plain[k.name] else ""
        table.add_row(Text(k.name), Text(type_name(k.hint)), Text(_shown(k.value), style=style), Text(k.help))
    return table


def _shown(value: Any) -> str:
    """A value as a `key=value` override would spell it."""
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    return str(value)
