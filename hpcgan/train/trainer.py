"""The training loop: the same code on one process and on N ranks (torchrun, accelerate launch,
srun with RANK/WORLD_SIZE exported), through accelerate or DeepSpeed (a Strategy).

Each component owns its state and its cadence: the Checkpointer (hpcgan/train/checkpointer.py), the
TrainingLog, the SampleGrids, the Evaluator, the EMA generator, the schedules and ADA's controller.
The loop asks each `should_...(step)` and hands it what it needs.

Determinism: every random draw of step s on rank r comes from a generator seeded with
(seed, s, r, purpose), and the loader's order is a pure function of (seed, epoch, world size), so
a run resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.models.augment import augment
from hpcgan.runs import hold as run_hold
from hpcgan.runs.layout import RunPaths
from hpcgan.runs.versions import software_versions
from hpcgan.train.ada_controller import AdaController
from hpcgan.train.checkpointer import Checkpointer
from hpcgan.train.config import RunConfig, check, networks_for
from hpcgan.train.determinism import set_deterministic
from hpcgan.train.ema_generator import EmaGenerator
from hpcgan.train.evaluator import Evaluator
from hpcgan.train.fake_labels import FakeLabels
from hpcgan.train.gan_steps import StepStats, discriminator_loss, generator_loss
from hpcgan.train.guard import DivergenceGuard
from hpcgan.train.live_loggers import open_loggers
from hpcgan.train.optimizers import make_optimizer, param_digest
from hpcgan.train.precision import Precision
from hpcgan.train.rank_zero import rank0_decides
from hpcgan.train.rng_state import rng_states, set_rng_states
from hpcgan.train.sample_grid import SampleGrids
from hpcgan.train.schedules import Schedules
from hpcgan.train.step_agreement import Agreement, agree
from hpcgan.train.step_schedules import StepSchedules
from hpcgan.train.stop_signals import StopSignals
from hpcgan.train.strategy import DDPStrategy, Strategy, make_accelerator
from hpcgan.train.threads import set_torch_threads
from hpcgan.train.training_log import TrainingLog

PURPOSE_D, PURPOSE_G, PURPOSE_AUG = 1, 2, 3


def make_run_dir(run_dir: Path) -> None:
    """The run dir, made if missing; one line when it cannot be (a file there, no permission)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir}: is a file, not a folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--run-dir {run_dir}: cannot be created ({e.strerror})") from None


class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, resume: str = "auto", overwrite: bool = False) -> None:
        check(config)
        c, self.config, self.run_dir = config, config, Path(run_dir)
        set_deterministic(c.train.deterministic)  # before the first cuBLAS call (hpcgan/train/determinism.py)
        self.acc = make_accelerator()
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        self.device, main = self.acc.device, self.acc.is_main_process
        self.threads = set_torch_threads(c.train.num_workers, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        self.precision = Precision(c.train.precision, self.device)
        self.guard = DivergenceGuard(c.guard.policy, c.guard.retries, c.guard.lr_factor)
        self._injected = 0
        self.shard_set = ShardSet.open(c.data)
        if self.shard_set.image_size != c.model.resolution:
            raise UserError(f"--data {c.data}: images are {self.shard_set.image_size} px, --gan {c.gan} trains at "
                            f"{c.model.resolution} px (override model.resolution or re-shard)")  # fmt: skip
        self.classes = self.shard_set.classes
        self.num_classes = len(self.classes)
        self.label_sets = self.shard_set.label_sets  # None unless the set is multi-label
        self.fake_labels = FakeLabels(self.num_classes, self.label_sets, c.train.label_sampling,
                                      self.shard_set.train_class_counts())  # fmt: skip

        # Construct networks: the same seed on every rank gives the same initial weights.
        torch.manual_seed(c.seed)
        g, d = networks_for(c, self.num_classes)
        # Not under DeepSpeed: ZeRO moves the parameters into one flat (contiguous) buffer per network.
        if c.train.channels_last and c.train.strategy != "deepspeed":  # before the EMA copy
            g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        self.ema = EmaGenerator(c.train, g, self.device)  # copied before a strategy wraps or partitions G
        self.strategy = self._strategy(g, d, make_optimizer(c.optim, g, "g"), make_optimizer(c.optim, d, "d"))
        self.loader = ShardLoader(self.shard_set, c.train.batch_size, seed=c.seed, rank=self.rank,
                                  world_size=self.world, num_workers=c.train.num_workers,
                                  balance=c.train.balance)  # fmt: skip
        self.step, self._skips_warned = 0, 0
        self.images_per_step = c.train.batch_size * self.world * c.optim.d_steps  # real images D sees
        horizon = c.train.schedule_kimg * 1000 or c.train.steps * self.images_per_step
        self.schedules = Schedules(horizon)  # a resumed run takes the horizon it started with
        self.step_schedules = StepSchedules(c, self.schedules)
        speed = c.train.ada_kimg * 1000 or min(500_000, horizon / 10)
        self.ada = AdaController(c.train.ada_target, c.train.ada_interval, speed, enabled=c.train.ada)
        self.evaluator = Evaluator(c.eval, self.shard_set, self.device, main)

        # The run dir: held by this job, cleared of killed saves, then resumed from.
        make_run_dir(self.run_dir)
        self._hold()
        self.checkpointer = Checkpointer(self.run_dir, c.checkpoint.every, c.checkpoint.keep)
        self.checkpointer.prepare(resume, overwrite)
        found = self.checkpointer.resume_state(resume, c.hash(), c.accepted_hashes())
        self.resumed_from = found[0] if found else None
        if found:
            self._load_state(found[1])
        else:  # where a divergence before the first checkpoint rolls back to
            self.checkpointer.keep_initial_state(self.state())
        if main:
            write_json(RunPaths(self.run_dir).config, c.to_dict())
        live = open_loggers(c.train.loggers, self.run_dir, self.step, c.to_dict(), main)  # rank 0's, after the resume
        self.log = TrainingLog(self.run_dir, c.train.log_every, c.train.steps, self.world, main, live)
        self.samples = SampleGrids(self.run_dir, c.train.sample_every, c.model.z_dim, self.num_classes, c.seed, main,
                                   self.label_sets)  # fmt: skip
        self._batches = self._endless_batches()

    def _strategy(self, g, d, opt_g, opt_d) -> Strategy:
        c = self.config
        if c.train.strategy == "deepspeed":
            from hpcgan.train.deepspeed_strategy import DeepSpeedStrategy  # deepspeed is an optional extra

            return DeepSpeedStrategy(c, g, d, opt_g, opt_d, self.world, self.rank)
        return DDPStrategy(self.acc, self.precision, c.optim.grad_clip, g, d, opt_g, opt_d)

    # -- the loop -------------------------------------------------------------------------------

    def train(
        self, on_step: Callable[[int, dict[str, float]], None] | None = None, stop: StopSignals | None = None
    ) -> str:
        """Run to train.steps; returns "completed", or the name of the stop signal (e.g. "SIGUSR2")
        after which every rank saved a checkpoint at the same step. `on_step(step, latest logged
        metrics)` reports progress (rank 0)."""
        self.log.event("start", self.step, **_scheduler_facts(), versions=software_versions())
        outcome = "completed"
        while self.step < self.config.train.steps and outcome == "completed":
            stats_d, stats_g, signs = self._train_step()
            agreed = self._agree(stats_d, stats_g, stop, signs)
            if agreed.diverged:
                self._roll_back()  # with a stop signal too: the rollback target is on disk already
            else:
                self._advance(agreed.real_signs)
                if self.log.should_log(self.step):
                    self._log(stats_d, stats_g)
                if self.samples.should_sample(self.step):
                    self.save_samples()
                if self.checkpointer.should_save(self.step, agreed.checkpoint_requested, bool(agreed.stop_signal)):
                    self.save_checkpoint()
                if self.evaluator.should_eval(self.step):
                    self.evaluate()
                if on_step is not None:
                    on_step(self.step, self.log.latest)
            outcome = agreed.stop_signal or outcome
        if outcome == "completed":
            self._complete()
        else:
            self.log.event("stopped", self.step, signal=outcome)
        self.log.close()
        return outcome

    @property
    def last_metrics(self) -> dict[str, Any]:
        return self.log.latest

    def close(self) -> None:
        """Leave the process group (every rank, after `train`). A process that exits with gloo's
        threads still up can abort in their destructors ("terminate called without an active
        exception"): training complete, yet SLURM records the job FAILED with exit code 6."""
        self.loader.close()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # no rank tears its connections down while another still uses them
        self.acc.end_training()

    def _train_step(self) -> tuple[StepStats, StepStats, Any]:
        """optim.d_steps D updates, then optim.g_steps G updates, at this step's LRs."""
        c = self.config
        self.step_schedules.set_optimizers(self.step, self.strategy.opt_g, self.strategy.opt_d,
                                           self.guard.state.lr_scale)  # fmt: skip
        signs: Any = 0.0
        for k in range(c.optim.d_steps):
            stats_d = self._d_update(next(self._batches), k)
            signs = signs + stats_d.real_signs
            self.log.count_images(c.train.batch_size)
        for k in range(c.optim.g_steps):
            stats_g = self._g_update(k)
        return stats_d, stats_g, signs

    def _agree(self, stats_d: StepStats, stats_g: StepStats, stop: StopSignals | None, signs) -> Agreement:
        requested = self.acc.is_main_process and self.checkpointer.requested()
        return agree(stats_d, stats_g, self.precision.name == "fp16", requested, stop, signs, self.device)

    def _advance(self, real_signs: float) -> None:
        """The step is taken on every rank: EMA, counters, schedules and ADA move on."""
        self.ema.update(self.strategy.unwrap(self.strategy.g), self.step, self.schedules, self.images_per_step)
        self.step += 1
        self.schedules.advance(self.images_per_step)
        self.ada.observe(real_signs, self.images_per_step, self.step, self.images_per_step)

    def _complete(self) -> None:
        """The final checkpoint and grid, and every rank's parameter digest (equal digests show the
        ranks stayed identical); the run dir's hold is released."""
        if self.checkpointer.last_saved != self.step:
            self.save_checkpoint()
            if self.checkpointer.save_failed:
                raise UserError(f"{self.run_dir}: the final checkpoint (step {self.step}) could not be written; "
                                f"the last saved one is {self.checkpointer.rollback_path}")  # fmt: skip
        self.save_samples()
        s = self.strategy
        digests = gather_object([param_digest(s.unwrap(m)) for m in (s.g, s.d)])
        self.log.event("completed", self.step, param_digests=[digests[i : i + 2] for i in range(0, len(digests), 2)])
        if self.acc.is_main_process:
            run_hold.release(self.run_dir)

    def _check_skipped(self, skipped: int) -> None:
        """Damaged samples are skipped and counted (hpcgan/data/loader.py); past train.max_skip_fraction
        of the images seen, the data is broken rather than blemished, and every rank (same sum) stops."""
        seen = max(self.schedules.images, 1)
        if skipped > self.config.train.max_skip_fraction * seen:
            first = self.loader.skip_messages[0] if self.loader.skip_messages else "see hpcgan inspect"
            raise UserError(f"--data {self.config.data}: {skipped} damaged samples in {seen} images, more than "
                            f"train.max_skip_fraction={self.config.train.max_skip_fraction}; first: {first}")
        if self.loader.skip_messages[self._skips_warned :] and self.acc.is_main_process:
            for message in self.loader.skip_messages[self._skips_warned :]:
                warnings.warn(f"skipped a damaged sample: {message}", stacklevel=1)
        self._skips_warned = len(self.loader.skip_messages)

    def _endless_batches(self) -> Iterator:
        while True:
            yield from self.loader

    def _d_update(self, batch, k: int) -> StepStats:
        images, labels = batch
        real = images.to(self.device).float() / 127.5 - 1
        labels = labels.to(self.device)
        gen = self._generator(PURPOSE_D, k)
        if self.config.train.augment:
            quality = (self.config.train.jpeg_quality, 95)
            real = augment(real, self.config.train.augment, self._generator(PURPOSE_AUG, k), jpeg_quality=quality)
        self._real, self._real_labels = real, labels  # BiGAN's G step encodes the same real batch
        g, d = self.strategy.modules()
        with self.precision.autocast():
            loss, stats = discriminator_loss(self.config, g, d, real, labels, self.fake_labels, gen, self.ada.p,
                                             self.step_schedules.gamma_scale(self.step))  # fmt: skip
        if self._inject_nan():
            loss = loss * float("nan")
            stats.loss = loss.detach()
        stats.grad_norm = self.strategy.step(loss, "d")
        if self.config.optim.weight_clip:
            self.strategy.clamp_weights(self.config.optim.weight_clip)
        return stats

    def _g_update(self, k: int) -> StepStats:
        d_module = self.strategy.unwrap(self.strategy.d)
        d_module.requires_grad_(False)  # the G step must not touch D
        try:
            with self.precision.autocast():
                loss, stats = generator_loss(self.config, self.strategy.modules()[0], d_module,
                                             self.config.train.batch_size, self.fake_labels,
                                             self._generator(PURPOSE_G, k), self.device, self._real,
                                             self._real_labels, self.ada.p)  # fmt: skip
            stats.grad_norm = self.strategy.step(loss, "g")
        finally:
            d_module.requires_grad_(True)
        return stats

    def _inject_nan(self) -> bool:
        """guard.inject_nan_at: a NaN loss at that step (the guard's tests and drills)."""
        g = self.config.guard
        if g.inject_nan_at and self.step + 1 == g.inject_nan_at and self._injected < g.inject_nan_times:
            self._injected += 1
            return True
        return False

    def _generator(self, purpose: int, k: int) -> torch.Generator:
        entropy = [self.config.seed, self.step, self.rank, purpose, k]
        if self.guard.state.reseeds:  # after a rollback with the reseed policy
            entropy.append(self.guard.state.reseeds)
        seed = np.random.SeedSequence(entropy).generate_state(1)[0]
        return torch.Generator(device=self.device).manual_seed(int(seed))

    def _log(self, stats_d: StepStats, stats_g: StepStats) -> None:
        names = ("loss_d", "loss_g", "d_real_acc", "d_fake_acc", "penalty", "grad_norm_d", "grad_norm_g")
        values = torch.stack([
            torch.as_tensor(v, dtype=torch.float32, device=self.device)
            for v in (stats_d.loss, stats_g.loss, stats_d.real_acc, stats_d.fake_acc, stats_d.penalty,
                      stats_d.grad_norm, stats_g.grad_norm)
        ])  # fmt: skip
        values = torch.cat([values, torch.tensor([float(self.loader.skipped)], device=self.device)])
        *values, skipped = self.acc.reduce(values, reduction="mean").tolist()  # every rank takes part
        record = {"step": self.step, **dict(zip(names, values, strict=True))}
        self._check_skipped(round(skipped * self.world))
        opt_g, opt_d = self.strategy.opt_g, self.strategy.opt_d
        record |= {
            "skipped_samples": round(skipped * self.world), "images_per_s": self.log.images_per_s(),
            "lr_g": opt_g.param_groups[0]["lr"], "lr_d": opt_d.param_groups[0]["lr"],
            "epoch": self.loader.position.epoch, "world_size": self.world, "kimg": self.schedules.images / 1000,
        }  # fmt: skip
        record |= self.ada.log_fields() | self.step_schedules.log_fields() | self.strategy.loss_scales()
        self.log.write(record)

    # -- outputs and state ------------------------------------------------------------------------

    def save_samples(self) -> None:
        self.samples.save(self.ema.drawing(self.strategy.unwrap(self.strategy.g)), self.step, self.device)

    def evaluate(self) -> dict[str, Any]:
        """FID/KID of the drawing generator on every rank; checkpoints/best.pt follows the lowest FID."""
        g = self.ema.drawing(self.strategy.unwrap(self.strategy.g))
        return self.evaluator.evaluate(g, self.config.model.z_dim, self.num_classes, self.step, self.log,
                                       self.checkpointer, self.state)  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to repeat this one exactly (every rank calls it: it gathers)."""
        s = self.strategy
        return {
            "step": self.step,
            "config_hash": self.config.hash(),
            "config": self.config.to_dict(),
            "g": s.unwrap(s.g).state_dict(),
            "d": s.unwrap(s.d).state_dict(),
            "ema": self.ema.state_dict(),
            **s.state_dict(),  # opt_g, opt_d, scaler_g, scaler_d
            "guard": self.guard.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": gather_object([rng_states()]),  # one entry per rank
            "world_size": self.world,
            "classes": self.classes,
            "label_sets": self.label_sets.to_dict() if self.label_sets else None,
            "best_fid": self.evaluator.best_fid,
            "schedules": self.schedules.state_dict(),
            "ada": self.ada.state_dict(),
        }

    def save_checkpoint(self) -> None:
        """All ranks call this together; rank 0 writes (weights and optimisers are identical across
        ranks, the RNG states are gathered)."""
        guard_before = self.guard.state_dict()
        self.guard.committed()  # before state(): a resumed run must get the same retry budget
        if not self.checkpointer.save(self.step, self.state()):
            self.guard.load_state_dict(guard_before)

    def _hold(self) -> None:
        """Rank 0 takes the run dir's hold; every rank learns the outcome."""

        def take() -> None:
            stale = run_hold.acquire(self.run_dir)
            if stale:
                warnings.warn(f"{self.run_dir}: took over the hold of a dead job ({stale})", stacklevel=1)

        rank0_decides(take)

    def _roll_back(self) -> None:
        """Back to the Checkpointer's rollback target; the loader's position comes back with it."""
        path, state = self.checkpointer.rollback_target()
        failed_at = self.step + 1
        change = self.guard.diverged(failed_at, int(state["step"]))
        self._load_state(state, keep_guard=True)
        self._batches = self._endless_batches()
        if self.acc.is_main_process:
            self.log.event("diverged", self.step, failed_at=failed_at, rolled_back_to=self.step, change=change)
            warnings.warn(f"non-finite loss or gradient at step {failed_at}: rolled back to {path} "
                          f"(step {self.step}); {change}", stacklevel=1)  # fmt: skip

    def _load_state(self, state: dict[str, Any], keep_guard: bool = False) -> None:
        s = self.strategy
        s.unwrap(s.g).load_state_dict(state["g"])
        s.unwrap(s.d).load_state_dict(state["d"])
        self.ema.load_state_dict(state["ema"])
        s.load_state_dict(state)
        if not keep_guard and "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self.step = int(state["step"])
        self.evaluator.best_fid = float(state.get("best_fid", float("inf")))
        if "schedules" in state:  # checkpoints from before the schedules start them afresh
            self.schedules.load_state_dict(state["schedules"])
            self.ada.load_state_dict(state["ada"])
        if state["world_size"] == self.world:
            self.loader.load_state_dict(state["loader"])
        else:
            # Another world size cannot repeat the same batches: continue from the global sample
            # count instead (documented as not bit-identical).
            self.loader.seek_global_samples(int(state["loader"]["samples_seen"]))
        rng = state["rng"]
        set_rng_states(rng[self.rank] if self.rank < len(rng) else rng[0])


def _scheduler_facts() -> dict[str, Any]:
    """Which job (and which incarnation of it) is running this start of the run."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    return {"job_id": run_hold.current_job_id(), "restart_count": restarts, "host": os.uname().nodename}
