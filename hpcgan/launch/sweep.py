"""Sweep files: a base config and a grid or a list of overrides, one run per element.

name = "lr"                       # the sweep dir: runs/lr/ (default: the file's stem)
gan = "dcgan64"
data = "shards/phantom64"
[base]                            # overrides every element gets
"train.steps" = 500
[grid]                            # every combination ...
"optim.lr_g" = [1e-4, 2e-4]
seed = [0, 1]
# ... or instead a list:  [[runs]]  "optim.lr_g" = 1e-4  ...
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcgan.errors import UserError
from hpcgan.launch.submit_checks import check_name, check_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class SweepElement:
    name: str  # its run dir's name under the sweep dir
    overrides: list[str]  # key=value, base first


@dataclass(frozen=True)
class Sweep:
    name: str
    gan: str | None
    data: str | None
    elements: list[SweepElement]


def _pairs(table: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    out = []
    for key, value in table.items():
        if isinstance(value, dict):  # [base.train] steps = 5 -> train.steps=5
            out += [(f"{key}.{k}", v) for k, v in _pairs(value, where)]
        else:
            out.append((key, value))
    return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_sweep(path: Path) -> Sweep:
    try:
        spec = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--sweep {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--sweep {path}: not valid TOML ({exc})") from None
    unknown = set(spec) - {"name", "gan", "data", "base", "grid", "runs"}
    if unknown:
        raise UserError(f"--sweep {path}: unknown key(s) {', '.join(sorted(unknown))}; expected name, gan, data, "
                        "base, grid or runs")  # fmt: skip
    for key in ("name", "gan", "data"):
        if key in spec and not isinstance(spec[key], str):
            raise UserError(f"--sweep {path}: {key} must be a string, not {type(spec[key]).__name__}")
    # The name becomes the sweep dir (runs/NAME) and the job name in the sbatch script.
    check_name(f"--sweep {path}: name", spec.get("name"))
    check_text(f"--sweep {path}: gan", spec.get("gan"))
    check_text(f"--sweep {path}: data", spec.get("data"))
    if ("grid" in spec) == ("runs" in spec):
        raise UserError(f"--sweep {path}: give exactly one of [grid] or [[runs]]")
    base = [f"{k}={_text(v)}" for k, v in _pairs(spec.get("base", {}), "base")]
    if "grid" in spec:
        axes = _pairs(spec["grid"], "grid")
        for key, values in axes:
            if not isinstance(values, list) or not values:
                raise UserError(f"--sweep {path}: grid.{key} must be a non-empty list of values")
        combos = [list(zip([k for k, _ in axes], vs, strict=True)) for vs in itertools.product(*(v for _, v in axes))]
    else:
        if not isinstance(spec["runs"], list) or not all(isinstance(r, dict) for r in spec["runs"]):
            raise UserError(f"--sweep {path}: runs must be an array of tables ([[runs]])")
        combos = [_pairs(r, "runs") for r in spec["runs"]]
    elements = []
    for i, combo in enumerate(combos):
        label = "-".join(f"{k.rsplit('.', 1)[-1]}={_text(v)}" for k, v in combo)
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{i:03d}-{label}" if label else f"{i:03d}")
        elements.append(SweepElement(name, base + [f"{k}={_text(v)}" for k, v in combo]))
    return Sweep(str(spec.get("name") or Path(path).stem), spec.get("gan"), spec.get("data"), elements)
