"""The training loop: the same code on one process and on N ranks (torchrun, accelerate launch,
srun with RANK/WORLD_SIZE exported), through accelerate.

Determinism: every random draw of step s on rank r comes from a generator seeded with
(seed, s, r, purpose), and the loader's order is a pure function of (seed, epoch, world size), so
a run resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object

from hpcgan.atomic import write_json
from hpcgan.data.index import ShardSet
from hpcgan.data.loader import ShardLoader
from hpcgan.errors import UserError
from hpcgan.eval.collapse import describe_verdict, with_verdict
from hpcgan.models.augment import augment
from hpcgan.models.ema import update_ema
from hpcgan.runs import hold as run_hold
from hpcgan.runs.versions import software_versions
from hpcgan.train.ada_controller import AdaController
from hpcgan.train.checkpoint import (
    CheckpointWriteError,
    checkpoint_path,
    committed,
    latest_valid,
    load_checkpoint,
    move_aside,
    remove_orphaned_temps,
    save_best,
    save_checkpoint,
)
from hpcgan.train.config import RunConfig, check, networks_for
from hpcgan.train.deepspeed_config import ZERO_PARTITIONS
from hpcgan.train.fid_during_training import TrainingEvaluator
from hpcgan.train.gan_steps import StepStats, discriminator_loss, generator_loss
from hpcgan.train.guard import DivergenceGuard
from hpcgan.train.precision import Precision, scaler_state
from hpcgan.train.run_outputs import MetricsLog, save_grid
from hpcgan.train.schedules import Schedules
from hpcgan.train.stop_signals import StopSignals

PURPOSE_D, PURPOSE_G, PURPOSE_AUG = 1, 2, 3
SAMPLE_GRID = 64  # images in each sample grid
CHECKPOINT_REQUEST = "CHECKPOINT_NOW"  # `touch RUN/CHECKPOINT_NOW`: checkpoint at the next step
# USR2 (time limit or preemption: requeue wanted) outranks TERM when ranks saw different signals.
STOP_PRIORITY = (signal.SIGUSR2, signal.SIGTERM)


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
        self.config, self.run_dir = config, Path(run_dir)
        self.acc = _accelerator(config)
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        self.device = self.acc.device
        self.precision = Precision(config.train.precision, self.device)
        self.scaler_g, self.scaler_d = self.precision.scaler(), self.precision.scaler()
        self.guard = DivergenceGuard(config.guard.policy, config.guard.retries, config.guard.lr_factor)
        self._injected = 0
        self.shard_set = shard_set = ShardSet.open(config.data)
        if shard_set.image_size != config.model.resolution:
            raise UserError(
                f"--data {config.data}: images are {shard_set.image_size} px, --gan {config.gan} "
                f"trains at {config.model.resolution} px (override model.resolution or re-shard)"
            )
        self.classes = shard_set.classes
        self.num_classes = len(self.classes)

        # Construct networks: the same seed on every rank gives the same initial weights.
        torch.manual_seed(config.seed)
        g, d = networks_for(config, self.num_classes)
        # Not under DeepSpeed: ZeRO moves the parameters into one flat (contiguous) buffer per network.
        if config.train.channels_last and config.train.strategy != "deepspeed":  # before the EMA copy
            g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(g).eval().requires_grad_(False).to(self.device) if config.train.ema else None
        opt_g, opt_d = _optimizer(config, g, "g"), _optimizer(config, d, "d")
        # The strategy seam: DDP through accelerate, or two DeepSpeed engines (self.engines).
        self.engines = None
        if config.train.strategy == "deepspeed":
            from hpcgan.train.deepspeed_strategy import DeepSpeedPair  # deepspeed is an optional extra

            e = self.engines = DeepSpeedPair(config, g, d, opt_g, opt_d, self.world)
            self.g, self.d, self.opt_g, self.opt_d = e.g, e.d, e.opt_g, e.opt_d
        else:
            self.g, self.d, self.opt_g, self.opt_d = self.acc.prepare(g, d, opt_g, opt_d)
        self.loader = ShardLoader(
            shard_set,
            config.train.batch_size,
            seed=config.seed,
            rank=self.rank,
            world_size=self.world,
            num_workers=config.train.num_workers,
        )
        self.step, self._last_saved, self.save_failed, self._skips_warned = 0, -1, False, 0
        self.images_per_step = config.train.batch_size * self.world * config.optim.d_steps  # real images D sees
        horizon = config.train.schedule_kimg * 1000 or config.train.steps * self.images_per_step
        self.schedules = Schedules(horizon)  # a resumed run takes the horizon it started with
        speed = config.train.ada_kimg * 1000 or min(500_000, horizon / 10)
        self.ada = AdaController(config.train.ada_target, config.train.ada_interval, speed)
        self.best_fid = float("inf")
        self._rollback_path: Path | None = None
        make_run_dir(self.run_dir)
        self._hold()
        self._rank0_decides(lambda: self._prepare_run_dir(resume, overwrite))
        self.resumed_from = self._resume(resume)
        # Where a divergence before the first checkpoint rolls back to.
        self._initial_state = _to_cpu(self.state()) if self.resumed_from is None else None
        if self.acc.is_main_process:
            write_json(self.run_dir / "config.json", config.to_dict())
        self.metrics = MetricsLog(self.run_dir, self.acc.is_main_process)
        self.evaluator: TrainingEvaluator | None = None
        self.events = MetricsLog(self.run_dir, self.acc.is_main_process, "events.jsonl")
        self.last_metrics: dict[str, float] = {}  # the latest logged record (all ranks)
        fixed = torch.Generator(device="cpu").manual_seed(config.seed)
        self.fixed_z = torch.randn(SAMPLE_GRID, config.model.z_dim, generator=fixed)
        self.fixed_labels = torch.arange(SAMPLE_GRID) % max(self.num_classes, 1)  # classes in fixed columns

    # -- the loop -------------------------------------------------------------------------------

    def train(
        self, on_step: Callable[[int, dict[str, float]], None] | None = None, stop: StopSignals | None = None
    ) -> str:
        """Run to train.steps; returns "completed", or the name of the stop signal (e.g. "SIGUSR2")
        after which every rank saved a checkpoint at the same step. `on_step(step, latest logged
        metrics)` reports progress (rank 0)."""
        c = self.config
        self._event("start", **_scheduler_facts(), versions=software_versions())
        batches = self._batches()
        started, images_done = time.perf_counter(), 0
        while self.step < c.train.steps:
            self._set_optimizer_schedules()
            signs = 0.0
            for k in range(c.optim.d_steps):
                stats_d = self._d_update(next(batches), k)
                signs = signs + stats_d.real_signs
                images_done += c.train.batch_size
            for k in range(c.optim.g_steps):
                stats_g = self._g_update(k)
            diverged, checkpoint_requested, stop_signal, signs = self._agree(stats_d, stats_g, stop, signs)
            if diverged:
                self._roll_back()
                batches = self._batches()  # the loader position came back with the checkpoint
                if stop_signal:  # the rollback target is on disk already
                    self._event("stopped", signal=stop_signal)
                    return stop_signal
                continue
            self._update_ema()
            self.step += 1
            self.schedules.advance(self.images_per_step)
            if c.train.ada:
                self.ada.observe(signs, self.images_per_step, self.step, self.images_per_step)
            if self.step % c.train.log_every == 0 or self.step == c.train.steps:
                rate = images_done * self.world / (time.perf_counter() - started)
                self._log(stats_d, stats_g, rate)
            if c.train.sample_every and self.step % c.train.sample_every == 0:
                self.save_samples()
            if checkpoint_requested or stop_signal or (c.checkpoint.every and self.step % c.checkpoint.every == 0):
                self.save_checkpoint()
            if c.eval.every and self.step % c.eval.every == 0:
                self.evaluate()
            if on_step is not None:
                on_step(self.step, self.last_metrics)
            if stop_signal:
                self._event("stopped", signal=stop_signal)
                self.metrics.close()
                self.events.close()
                return stop_signal
        if self._last_saved != self.step:
            self.save_checkpoint()
            if self.save_failed:
                raise UserError(f"{self.run_dir}: the final checkpoint (step {self.step}) could not be written; "
                                f"the last saved one is {self._rollback_path}")  # fmt: skip
        self.save_samples()
        # Every rank's parameter digest: equal digests show DDP kept the ranks identical.
        digests = gather_object([param_digest(self.acc.unwrap_model(m)) for m in (self.g, self.d)])
        self._event("completed", param_digests=[digests[i : i + 2] for i in range(0, len(digests), 2)])
        self.metrics.close()
        self.events.close()
        if self.acc.is_main_process:
            run_hold.release(self.run_dir)
        return "completed"

    def close(self) -> None:
        """Leave the process group (every rank, after `train`). A process that exits with gloo's
        threads still up can abort in their destructors ("terminate called without an active
        exception"): training complete, yet SLURM records the job FAILED with exit code 6."""
        self.loader.close()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # no rank tears its connections down while another still uses them
        self.acc.end_training()

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

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        c = self.config.train
        g = self.acc.unwrap_model(self.g)
        if c.ema_kimg:
            decay = self.schedules.ema_decay(c.ema_kimg, c.ema_rampup_ratio, self.images_per_step)
            update_ema(self.ema, g, decay, self.step)
        else:
            update_ema(self.ema, g, c.ema, self.step, c.ema_rampup)

    def _batches(self):
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
        self._real = real  # BiGAN's G step encodes the same real batch
        g, d = self._forward_modules()
        self._real_labels = labels
        gamma_scale = self._gamma_scale()
        with self.precision.autocast():
            loss, stats = discriminator_loss(self.config, g, d, real, labels, self.num_classes, gen,
                                             self.ada_p, gamma_scale)  # fmt: skip
        if self._inject_nan():
            loss = loss * float("nan")
            stats.loss = loss.detach()
        stats.grad_norm = self._step(loss, self.d, self.opt_d, self.scaler_d)
        if self.config.optim.weight_clip and self.engines is not None:
            self.engines.clamp_weights(self.d, self.config.optim.weight_clip)
        elif self.config.optim.weight_clip:
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.config.optim.weight_clip, self.config.optim.weight_clip)
        return stats

    def _g_update(self, k: int) -> StepStats:
        d_module = self.acc.unwrap_model(self.d)
        d_module.requires_grad_(False)  # the G step must not touch D
        try:
            with self.precision.autocast():
                loss, stats = generator_loss(
                    self.config,
                    self._forward_modules()[0],
                    d_module,
                    self.config.train.batch_size,
                    self.num_classes,
                    self._generator(PURPOSE_G, k),
                    self.device,
                    self._real,
                    self._real_labels,
                    self.ada_p,
                )
            stats.grad_norm = self._step(loss, self.g, self.opt_g, self.scaler_g)
        finally:
            d_module.requires_grad_(True)
        return stats

    def _forward_modules(self) -> tuple:
        """What the losses call: the DDP wrappers, or under DeepSpeed the engines' modules (see
        deepspeed_strategy.py for why forwards bypass the engines)."""
        if self.engines is None:
            return self.g, self.d
        return self.g.module, self.d.module

    def _step(self, loss: torch.Tensor, model, optimizer, scaler) -> torch.Tensor:
        """Backward, unscale, clip, step; returns the (pre-clip) gradient norm. In fp16 the
        network's own scaler skips steps with overflowing gradients and lowers its scale."""
        if self.engines is not None:
            return self.engines.step(loss, model)
        self.acc.backward(scaler.scale(loss) if scaler is not None else loss)
        if scaler is not None:
            scaler.unscale_(optimizer)
        max_norm = self.config.optim.grad_clip or float("inf")  # inf: measure only
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return norm.detach()

    def _inject_nan(self) -> bool:
        g = self.config.guard
        if g.inject_nan_at and self.step + 1 == g.inject_nan_at and self._injected < g.inject_nan_times:
            self._injected += 1
            return True
        return False

    def _gamma_scale(self) -> float:
        """R1/R2 weight factor of this step: the cosine decay, and lazy regularisation (StyleGAN2):
        with loss.penalty_every=k the penalties run on every k-th step only, k times as strong."""
        every = self.config.loss.penalty_every
        if self.step % every:
            return 0.0
        return self.schedules.factor(self.config.loss.gamma_decay) * every

    @property
    def ada_p(self) -> float:
        return self.ada.p if self.config.train.ada else 0.0

    def _agree(
        self, stats_d: StepStats, stats_g: StepStats, stop: StopSignals | None, signs
    ) -> tuple[bool, bool, str | None, float]:
        """All ranks agree on (diverged, checkpoint requested, stop signal) and sum ADA's signs of
        D(real): one small all-reduce (sum) per step. In fp16 an infinite gradient is the scaler's
        business (it skips that step); a non-finite loss is not."""
        values = [stats_d.loss, stats_g.loss, torch.as_tensor(stats_d.penalty, device=self.device)]
        if self.scaler_d is None:
            values += [stats_d.grad_norm, stats_g.grad_norm]
        bad = (~torch.isfinite(torch.stack(values))).any().float()
        requested = float(self.acc.is_main_process and (self.run_dir / CHECKPOINT_REQUEST).exists())
        received = stop.received if stop is not None else None
        signalled = [float(received == sig) for sig in STOP_PRIORITY]
        flags = torch.stack([bad, *(torch.tensor(v, device=self.device) for v in (requested, *signalled)),
                             torch.as_tensor(signs, dtype=torch.float32, device=self.device)])  # fmt: skip
        if self.world > 1:
            torch.distributed.all_reduce(flags)
        flags = flags.tolist()
        stop_signal = next((sig.name for sig, seen in zip(STOP_PRIORITY, flags[2:4], strict=True) if seen > 0), None)
        return flags[0] > 0, flags[1] > 0, stop_signal, flags[4]

    def evaluate(self) -> dict[str, Any]:
        """FID/KID of the EMA generator (G without one) on every rank; the best checkpoint by FID is
        kept as checkpoints/best.pt."""
        if self.evaluator is None:
            e = self.config.eval
            self.evaluator = TrainingEvaluator(self.shard_set, e.n, e.extractor, e.split, e.batch_size, self.device,
                                               e.weights or None)  # fmt: skip
        g = self.ema if self.ema is not None else self.acc.unwrap_model(self.g)
        result = with_verdict(self.evaluator(g, self.config.model.z_dim, self.num_classes))
        self.metrics.write({"step": self.step, **result})
        if result["diversity"] != "ok" and self.acc.is_main_process:
            warnings.warn(f"step {self.step}: {describe_verdict(result['diversity'], result['diversity_notes'])}",
                          stacklevel=1)  # fmt: skip
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            state = self.state()  # every rank: it gathers the RNG states

            def write_best() -> None:
                try:
                    save_best(self.run_dir, self.step, state, result["fid"])
                except CheckpointWriteError as exc:  # best.pt is a convenience: the run goes on
                    warnings.warn(f"{exc}; the earlier best.pt is kept", stacklevel=1)

            self._rank0_decides(write_best)
        return result

    def _rank0_decides(self, decide: Callable[[], Any]) -> Any:
        """decide() on rank 0; every rank gets its value, or the same one-line error (so no rank
        waits in a collective for one that gave up)."""
        box: list[Any] = [("ok", None)]
        if self.acc.is_main_process:
            try:
                box = [("ok", decide())]
            except UserError as exc:
                box = [("error", str(exc))]
        if self.world > 1:
            torch.distributed.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise UserError(value)
        return value

    def _hold(self) -> None:
        """Rank 0 takes the run dir's hold; every rank learns the outcome."""

        def take() -> None:
            stale = run_hold.acquire(self.run_dir)
            if stale:
                warnings.warn(f"{self.run_dir}: took over the hold of a dead job ({stale})", stacklevel=1)

        self._rank0_decides(take)

    def _prepare_run_dir(self, resume: str, overwrite: bool) -> None:
        """Temp files of killed saves go; a fresh start (--resume none) never trains into another
        run's checkpoints: refused, or with --overwrite its files are moved aside first."""
        remove_orphaned_temps(self.run_dir)
        existing = committed(self.run_dir)
        if resume != "none" or not existing:
            return
        if not overwrite:
            raise UserError(f"--run-dir {self.run_dir}: holds checkpoints up to {existing[0].name}; use --resume auto "
                            "to continue it, another --run-dir, or --overwrite to move them aside")  # fmt: skip
        aside = move_aside(self.run_dir, ("checkpoints", "metrics.jsonl", "events.jsonl", "samples", "eval.jsonl"))
        warnings.warn(f"--overwrite: the earlier run's checkpoints and logs moved to {aside}", stacklevel=1)

    def _event(self, name: str, **facts: Any) -> None:
        """A line in events.jsonl for what happened to the run (status and timelines read them)."""
        self.events.write({"event": name, "step": self.step, "time": time.time(), "world_size": self.world, **facts})

    def _roll_back(self) -> None:
        """Back to the checkpoint this run last saved or resumed from (the same file on every
        rank), or to the initial weights before the first."""
        if self._rollback_path is not None:
            path, state = self._rollback_path, load_checkpoint(self._rollback_path)
        else:
            path, state = "the initial weights", self._initial_state
        failed_at = self.step + 1
        change = self.guard.diverged(failed_at, int(state["step"]))
        self._load_state(state, keep_guard=True)
        if self.acc.is_main_process:
            self._event("diverged", failed_at=failed_at, rolled_back_to=self.step, change=change)
            warnings.warn(
                f"non-finite loss or gradient at step {failed_at}: rolled back to {path} (step {self.step}); {change}",
                stacklevel=1,
            )

    def _generator(self, purpose: int, k: int) -> torch.Generator:
        entropy = [self.config.seed, self.step, self.rank, purpose, k]
        if self.guard.state.reseeds:  # after a rollback with the reseed policy
            entropy.append(self.guard.state.reseeds)
        seed = np.random.SeedSequence(entropy).generate_state(1)[0]
        return torch.Generator(device=self.device).manual_seed(int(seed))

    def _set_optimizer_schedules(self) -> None:
        """LRs (cosine decay, fine-tune phase, the guard's scale) and Adam's beta2 for this step."""
        o = self.config.optim
        start = o.finetune_from * self.config.train.steps if o.finetune_from < 1 else o.finetune_from
        scale = o.finetune_scale if o.finetune_from and self.step >= start else 1.0
        scale *= self.guard.state.lr_scale * self.schedules.factor(o.lr_decay)
        beta2 = self.schedules.beta2(o.beta2_start, o.beta2)
        for opt, lr in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale
                if o.name == "adam":
                    group["betas"] = (o.beta1, beta2)

    def _log(self, stats_d: StepStats, stats_g: StepStats, rate: float) -> None:
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
        record["skipped_samples"] = round(skipped * self.world)
        record |= {
            "images_per_s": rate, "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"],
            "epoch": self.loader.position.epoch, "world_size": self.world, "kimg": self.schedules.images / 1000,
        }  # fmt: skip
        if self.config.train.ada:
            record |= {"ada_p": self.ada.p, "ada_rt": self.ada.r_t}
        if self.config.loss.gamma_decay != 1 and (self.config.loss.r1_gamma or self.config.loss.r2_gamma):
            record["gamma_scale"] = self.schedules.factor(self.config.loss.gamma_decay)
        if self.scaler_d is not None:
            record |= {"loss_scale_d": self.scaler_d.get_scale(), "loss_scale_g": self.scaler_g.get_scale()}
        self.metrics.write(record)
        self.last_metrics = record

    # -- outputs --------------------------------------------------------------------------------

    @torch.no_grad()
    def save_samples(self) -> None:
        if not self.acc.is_main_process:
            return
        g = self.ema if self.ema is not None else self.acc.unwrap_model(self.g)
        was_training = g.training
        g.eval()
        images = g(self.fixed_z.to(self.device), self.fixed_labels.to(self.device))
        g.train(was_training)
        path = self.run_dir / "samples" / f"step-{self.step:06d}.png"
        try:
            save_grid(images, path)
        except OSError as exc:  # a picture for people: training goes on without it
            warnings.warn(f"{path}: sample grid not written ({exc.strerror or exc}); training goes on", stacklevel=1)

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config_hash": self.config.hash(),
            "config": self.config.to_dict(),
            "g": self.acc.unwrap_model(self.g).state_dict(),
            "d": self.acc.unwrap_model(self.d).state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "opt_g": self.opt_g.state_dict() if self.engines is None else self.engines.optimizer_state(self.g),
            "opt_d": self.opt_d.state_dict() if self.engines is None else self.engines.optimizer_state(self.d),
            "scaler_g": scaler_state(self.scaler_g),
            "scaler_d": scaler_state(self.scaler_d),
            "guard": self.guard.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": gather_object([_rng_states()]),  # one entry per rank
            "world_size": self.world,
            "classes": self.classes,
            "best_fid": self.best_fid,
            "schedules": self.schedules.state_dict(),
            "ada": self.ada.state_dict(),
        }

    def save_checkpoint(self) -> None:
        """All ranks call this together; rank 0 writes (weights and optimisers are identical across
        ranks, the RNG states are gathered)."""
        guard_before = self.guard.state_dict()
        self.guard.committed()  # before state(): a resumed run must get the same retry budget
        state = self.state()

        def write() -> str | None:
            try:
                save_checkpoint(self.run_dir, self.step, state, self.config.checkpoint.keep)
            except CheckpointWriteError as exc:
                return str(exc)
            (self.run_dir / CHECKPOINT_REQUEST).unlink(missing_ok=True)
            return None

        failure = self._rank0_decides(write)
        if failure is not None:
            # The previous checkpoint stays the rollback and resume point; without one there is
            # nothing to come back to, so the run stops rather than train on unsaved.
            self.guard.load_state_dict(guard_before)
            if self._rollback_path is None and self.resumed_from is None:
                raise UserError(f"{failure}; no checkpoint could be saved, stopping")
            warnings.warn(f"{failure}; the previous checkpoint ({self._rollback_path}) is kept, training goes on",
                          stacklevel=1)  # fmt: skip
            self.save_failed = True
            return
        self.save_failed = False
        self._last_saved, self._rollback_path = self.step, checkpoint_path(self.run_dir, self.step)
        self._initial_state = None  # rollbacks now go to a checkpoint

    def _resume(self, resume: str) -> Path | None:
        if resume == "none":
            return None
        if resume == "auto":
            # Rank 0 picks the checkpoint and every rank loads that file: a node whose view of
            # a shared file system lags must not pick an older one.
            choice: list[Any] = [None]
            if self.acc.is_main_process:
                found = latest_valid(self.run_dir)
                choice = [str(found[0]) if found else None]
            if self.world > 1:
                torch.distributed.broadcast_object_list(choice, src=0)
            if choice[0] is None:
                return None
            path = Path(choice[0])
            state = load_checkpoint(path)
        else:
            path = Path(resume)
            state = load_checkpoint(path)
        if state["config_hash"] != self.config.hash():
            raise UserError(
                f"{path}: saved with another configuration (hash {state['config_hash']}, this run "
                f"{self.config.hash()}); use a new --run-dir or the same settings"
            )
        self._load_state(state)
        self._last_saved, self._rollback_path = self.step, path
        return path

    def _load_state(self, state: dict[str, Any], keep_guard: bool = False) -> None:
        self.acc.unwrap_model(self.g).load_state_dict(state["g"])
        self.acc.unwrap_model(self.d).load_state_dict(state["d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.engines is not None:
            for engine, name in ((self.g, "g"), (self.d, "d")):
                self.engines.load_optimizer_state(engine, state[f"opt_{name}"], self.world, self.rank, name)
        elif ZERO_PARTITIONS in state["opt_g"]:
            warnings.warn("optimizer states of a DeepSpeed checkpoint: weights only, Adam starts afresh", stacklevel=1)
        else:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler is not None and state.get(key):
                scaler.load_state_dict(state[key])
        if not keep_guard and "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self.step = int(state["step"])
        self.best_fid = float(state.get("best_fid", float("inf")))
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
        _set_rng_states(rng[self.rank] if self.rank < len(rng) else rng[0])


def _accelerator(config: RunConfig) -> Accelerator:
    cuda = torch.cuda.is_available()
    # Mixed precision is ours (hpcgan/train/precision.py): one loss scaler per network in fp16.
    # broadcast_buffers=False: D's BatchNorm buffers change in forward; DDP re-broadcasting them
    # between D's forward and backward fails ("modified by an inplace operation").
    acc = Accelerator(
        cpu=not cuda, mixed_precision="no", kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)]
    )
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if acc.num_processes != expected:
        raise UserError(
            f"WORLD_SIZE={expected} but accelerate started {acc.num_processes} process(es); "
            "on CPU, launch with torchrun or `accelerate launch --multi_gpu`"
        )
    return acc


def _optimizer(config: RunConfig, model, which: str) -> torch.optim.Optimizer:
    o = config.optim
    lr = o.lr_g if which == "g" else o.lr_d
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(o.beta1, o.beta2), fused=o.fused)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr)
    raise UserError(f"optim.name={o.name}: expected adam or rmsprop")


def _rng_states() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def _scheduler_facts() -> dict[str, Any]:
    """Which job (and which incarnation of it) is running this start of the run."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    return {"job_id": run_hold.current_job_id(), "restart_count": restarts, "host": os.uname().nodename}


def param_digest(module: torch.nn.Module) -> str:
    """sha256 of the parameters (not buffers: BatchNorm statistics are per rank)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters()):
        h.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _to_cpu(state: Any) -> Any:
    """A deep copy with every tensor on the CPU (the rollback target before the first checkpoint)."""
    if torch.is_tensor(state):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_cpu(v) for v in state)
    return copy.deepcopy(state)
