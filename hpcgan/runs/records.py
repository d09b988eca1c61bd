"""Reading a run's JSON files: its configuration (one policy for every command) and its job record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpcgan.errors import UserError
from hpcgan.runs.layout import RunPaths


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when it is missing, unreadable or not an object (for views
    such as status and report that show what there is)."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """RUN/config.json as a dict with the run's shard set under "data"; a missing, damaged or
    incomplete file is one line naming it (every command that needs a run's config says the same)."""
    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no {path.name}); pass a run dir or a checkpoint inside it")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: unreadable run config ({type(exc).__name__})") from None
    if not isinstance(config, dict) or not isinstance(config.get("data"), str) or not config["data"]:
        raise UserError(f"{path}: not a run config (expected a JSON object naming its shard set under \"data\")")
    return config


def read_job_record(run_dir: Path) -> dict[str, Any]:
    """RUN/job.json (job id, cluster, logs), or {} for a run started without `hpcgan submit`."""
    return read_json(RunPaths(Path(run_dir)).job_record)
