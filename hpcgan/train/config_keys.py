"""Dotted keys (`train.steps`) over a tree of config dataclasses: declaring a key with its help line,
walking them, setting one from `key=value` text, and the one check of choice keys.

Knows nothing of RunConfig: hpcgan/train/config_schema.py declares the keys, this module reads
their types. A choice key is typed `typing.Literal[...]`; a comma-separated list of choices is
`Annotated[str, CommaList(SomeLiteral)]`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from hpcgan.errors import UserError

C = TypeVar("C")


def key(default: Any, text: str) -> Any:
    """A config field: its default and the one line that `hpcgan config` shows for it."""
    return dataclasses.field(default=default, metadata={"help": text})


def section(cls: type, text: str) -> Any:
    """A field holding a whole section (its own dataclass of keys)."""
    return dataclasses.field(default_factory=cls, metadata={"help": text})


@dataclass(frozen=True)
class CommaList:
    """Marks a str key as a comma-separated list (maybe empty) whose items are each one of `of`."""

    of: Any  # a Literal


@dataclass(frozen=True)
class Key:
    name: str  # dotted, e.g. "train.steps"
    help: str
    hint: Any  # the resolved annotation, Annotated kept
    value: Any


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def walk(config: Any, prefix: str = "") -> Iterator[Key]:
    """Every leaf key under `config`, depth first, in declaration order."""
    hints = _hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from walk(value, f"{prefix}{f.name}.")
        else:
            yield Key(f"{prefix}{f.name}", f.metadata.get("help", ""), hints[f.name], value)


def choices(hint: Any) -> tuple[Any, ...]:
    """The allowed values of a Literal key (or of each item of a CommaList key); () for other keys."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    marker = _comma_list(hint)
    return typing.get_args(marker.of) if marker else ()


def _comma_list(hint: Any) -> CommaList | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, CommaList)), None)
    return None


def type_name(hint: Any) -> str:
    """How `hpcgan config` shows a key's type."""
    allowed = " | ".join(map(str, choices(hint)))
    if _comma_list(hint):
        return f"list of {allowed}"
    return allowed or getattr(hint, "__name__", str(hint))


def check_choices(config: Any) -> None:
    """The check of every choice key: one line naming the key and what it accepts."""
    for k in walk(config):
        allowed = choices(k.hint)
        if not allowed:
            continue
        if _comma_list(k.hint):
            items = [item.strip() for item in str(k.value).split(",") if item.strip()]
            if not all(item in allowed for item in items):
                raise UserError(f"{k.name}={k.value}: expected a comma-separated list of {', '.join(allowed)}")
        elif k.value not in allowed:
            raise UserError(f"{k.name}={k.value}: expected one of {', '.join(map(str, allowed))}")


def set_field(config: Any, dotted: str, value: Any) -> None:
    """Set `config.a.b = value`, converting text to the key's type (choices are checked by check_choices)."""
    *path, name = dotted.split(".")
    target = config
    for part in path:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise UserError(f"override {dotted}: no section {part!r}; sections are {_names(config)}")
        target = getattr(target, part)
    fields = {f.name: f for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else {}
    if name not in fields or dataclasses.is_dataclass(getattr(target, name)):
        raise UserError(f"override {dotted}: unknown key; {'.'.join(path) or 'top level'} has {', '.join(fields)}")
    setattr(target, name, _convert(dotted, value, _value_type(_hints(type(target))[name])))


def _value_type(hint: Any) -> Any:
    """The plain type a key's value has: str for Literal["a", "b"], int for Literal[1, 2], ..."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is Literal:
        return type(typing.get_args(hint)[0])
    return hint


def _convert(dotted: str, value: Any, kind: Any) -> Any:
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if kind is int and not isinstance(value, bool):
            number = float(value)  # "2.9", 2.9, "1e999": never silently truncated or overflowing
            if not math.isfinite(number) or number != int(number):
                raise ValueError(value)
            return int(number)
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is str and not isinstance(value, str):
            raise ValueError(value)
        return value
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"override {dotted}={value}: expected {kind.__name__}") from None


def _names(config: Any) -> str:
    return ", ".join(f.name for f in dataclasses.fields(config))


def flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested dict (a saved config.json) as (dotted key, value) pairs."""
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def apply_overrides(config: C, overrides: list[str]) -> C:
    """`key=value` items, as the command line gives them, set on `config` in order."""
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserError(f"override {item!r}: expected key=value, e.g. train.steps=500")
        set_field(config, name.strip(), value.strip())
    return config
