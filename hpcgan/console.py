"""A rich progress bar that the data layer drives through plain `advance(n)` callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# soft_wrap: lines are never broken at the console width (80 columns when captured): paths stay whole.
console = Console(stderr=True, soft_wrap=True)


def _columns() -> tuple:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextmanager
def progress_bar(
    description: str, total: int | None = None
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yields (advance, set_total). Transient, so an error after it leaves just the one error line."""
    with Progress(*_columns(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield (lambda n: bar.advance(task, n)), (lambda t: bar.update(task, total=t))


@contextmanager
def step_progress(description: str, total: int, completed: int = 0) -> Iterator[Callable[[int, str], None]]:
    """Yields update(completed, status): a bar with a free-text status (e.g. the latest losses)."""
    with Progress(*_columns(), TextColumn("{task.fields[status]}"), console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, completed=completed, status="")
        yield lambda n, status: bar.update(task, completed=n, status=status)
