"""The run's append-only logs (.jsonl): one JSON object per line, written line-buffered so a kill
loses at most the line being written, and read back skipping such a cut-short line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonlLog:
    """Appends records to one .jsonl file; a disabled log (every rank but 0) writes nothing."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.handle = Path(path).open("a", buffering=1) if enabled else None

    def write(self, record: dict[str, Any]) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a .jsonl file ([] when it is missing); lines that are not a JSON object go."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(record, dict):
            out.append(record)
    return out
