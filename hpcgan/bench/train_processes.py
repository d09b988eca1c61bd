"""The loop processes of `python -m hpcgan.bench train`: each contender (ours, or the plain loop)
runs in its own spawned process, which builds its loop and then steps it on the parent's
commands, timing the steps or counting their FLOPs."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from hpcgan.bench.train_flops import flop_counter
from hpcgan.bench.train_plain import PlainLoop, preload
from hpcgan.bench.train_setup import Settings, Variant, bench_config
from hpcgan.data.index import ShardSet
from hpcgan.errors import UserError
from hpcgan.train.config import RunConfig

READY_TIMEOUT = 600.0  # s for a loop process to import torch and build its loop (a loaded 2-core machine)


class LoopProcess:
    """A spawned process that builds one loop and then serves commands one at a time (see
    _Server); it sits idle, blocked on its pipe, while the others run."""

    def __init__(self, variant: Variant, settings: Settings, run_dir: Path) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked OpenMP or accelerate state
        self.conn, child = context.Pipe()
        # Not a daemon: the Trainer's loader starts worker processes of its own.
        self.process = context.Process(target=_serve, args=(child, variant, settings, run_dir), daemon=False)
        self.process.start()
        child.close()
        self.images_per_step = 0

    def wait_ready(self) -> None:
        self.images_per_step = self._reply(READY_TIMEOUT)

    def call(self, *command: Any) -> Any:
        self.conn.send(command)
        return self._reply(None)

    def _reply(self, timeout: float | None) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"a loop process sent nothing for {timeout} s")
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"a loop process died (exit code {self.process.exitcode})") from None
        if status == "UserError":
            raise UserError(value)
        if status != "ok":
            raise RuntimeError(f"a loop process failed: {status}: {value}")
        return value

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass  # already gone
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


@contextmanager
def loop_processes(variants: list[Variant], settings: Settings, tmp: Path) -> Iterator[list[LoopProcess]]:
    loops: list[LoopProcess] = []
    try:
        for i, variant in enumerate(variants):
            loops.append(LoopProcess(variant, settings, tmp / f"run-{i}"))
        for loop in loops:  # started together: imports overlap
            loop.wait_ready()
        yield loops
    finally:
        for loop in loops:
            loop.stop()


def _serve(conn: Connection, variant: Variant, settings: Settings, run_dir: Path) -> None:
    """The loop process: build the loop, report images per step, then step on command until None."""
    try:
        torch.set_num_threads(settings.threads)
        config = bench_config(settings.gan, settings.base + variant.overrides)
        server = _Server(conn, config.train.batch_size * config.optim.d_steps)
        if variant.kind == "ours":
            _serve_ours(server, config, settings, run_dir)
        else:
            _serve_plain(server, config, settings, variant.compiled)
    except _Stop:
        pass
    except UserError as exc:
        conn.send(("UserError", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send((type(exc).__name__, str(exc)))


class _Stop(Exception):
    """The parent is done with this loop."""


class _Server:
    """Called after every step of a loop: counts the steps of the current command down, answers
    it when done, and blocks for the next one. Commands: ("run", n) -> seconds for the next n steps;
    ("flops", n) -> FLOPs per image over the next n steps (forward and backward of every pass)."""

    def __init__(self, conn: Connection, images_per_step: int) -> None:
        self.conn, self.images_per_step = conn, images_per_step
        self.steps = self.left = 0
        self.start, self.counter = 0.0, None

    def begin(self) -> None:
        self.conn.send(("ok", self.images_per_step))
        self._next()

    def after_step(self, *_: Any) -> None:
        self.left -= 1
        if self.left > 0:
            return
        _synchronize()  # CUDA runs ahead of Python: the steps are done only when the GPU is
        reply = time.perf_counter() - self.start
        if self.counter is not None:
            self.counter.__exit__(None, None, None)
            reply, self.counter = self.counter.get_total_flops() / self.images_per_step / self.steps, None
        self.conn.send(("ok", reply))
        self._next()

    def _next(self) -> None:
        command = self.conn.recv()
        if command is None:
            raise _Stop
        what, self.steps = command
        self.left = self.steps
        if what == "flops":
            self.counter = flop_counter()
            self.counter.__enter__()
        _synchronize()  # no earlier work left in the GPU's queue to count against these steps
        self.start = time.perf_counter()


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _serve_ours(server: _Server, config: RunConfig, settings: Settings, run_dir: Path) -> None:
    """The Trainer itself, through its public loop: `train(on_step=...)` pauses after each step
    while the other loops take their turns."""
    from hpcgan.train.trainer import Trainer  # torch and accelerate's state only in this process

    config.data, config.train.steps = settings.data, 10**9  # ended by the parent, never by the count
    trainer = Trainer(config, run_dir, resume="none")
    server.begin()
    trainer.train(on_step=server.after_step)


def _serve_plain(server: _Server, config: RunConfig, settings: Settings, compiled: bool) -> None:
    shard_set = ShardSet.open(settings.data)
    images, labels = preload(shard_set, config.train.batch_size)
    loop = PlainLoop(config, images, labels, len(shard_set.classes), compiled)
    server.begin()
    while True:
        loop.step()
        server.after_step()
