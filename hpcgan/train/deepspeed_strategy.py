"""The DeepSpeed strategy: G and D each in their own ZeRO-1/2 engine, inside the same trainer.

Why `deepspeed.initialize` twice and not accelerate's multi-model DeepSpeed API: that API is marked
very experimental, needs the transformers package and a second Accelerator, and its save_state
fails with several DeepSpeed models (accelerate #3140). Here accelerate still starts the processes
(the same gloo/NCCL group as the DDP strategy) and each engine only partitions and steps its network.

Forward passes go through the engines' *modules*, backward and step through the engines:
- the G step must call D's module with D frozen (calling D's engine there fails under ZeRO 1-2);
- the gradient penalty and R1 take `autograd.grad` of D's output, and an engine-forward output runs
  the engine's gradient reduction at the end of *any* backward through it, that one included
  (IndexError in reduce_ipg_grads). `engine.backward` reduces explicitly, so nothing is lost.

Precision stays the trainer's, as under DDP: autocast over fp32 weights (bf16), no DeepSpeed
"bf16"/"fp16" section, which would turn the weights to half under our fp32 inputs. So fp16 is refused.
ZeRO keeps the parameters in one flat buffer per network: channels_last does not apply.

Checkpoints stay our single file: each rank's optimizer partition (Adam moments and fp32 master
weights) is gathered into it, so the atomic write, the commit marker, pruning and `--resume auto`
are the DDP ones. The total size equals one unpartitioned optimizer state.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from typing import Any

import torch
from torch import nn

from hpcgan.errors import UserError
from hpcgan.train.config import RunConfig
from hpcgan.train.deepspeed_config import INSTALL_HINT, ZERO_PARTITIONS, deepspeed_config


class DeepSpeedStrategy:
    """The two engines as a Strategy (hpcgan/train/strategy.py); `opt_g`/`opt_d` are their ZeRO
    optimizers (param_groups carry the LRs)."""

    def __init__(self, config: RunConfig, g: nn.Module, d: nn.Module, opt_g, opt_d, world_size: int, rank: int) -> None:
        deepspeed = _import_deepspeed()
        _ensure_process_group(deepspeed)
        ds_config = deepspeed_config(config, world_size)
        self.stage, self.world_size, self.rank = config.train.zero, world_size, rank
        self.g, self.opt_g = _engine(deepspeed, g, opt_g, ds_config)
        self.d, self.opt_d = _engine(deepspeed, d, opt_d, ds_config)

    def modules(self) -> tuple[nn.Module, nn.Module]:
        """The engines' modules: see the module docstring for why forwards bypass the engines."""
        return self.g.module, self.d.module

    def unwrap(self, model: Any) -> nn.Module:
        return model.module

    def loss_scales(self) -> dict[str, float]:
        return {}  # fp16 is refused under DeepSpeed (see the module docstring)

    def state_dict(self) -> dict[str, Any]:
        return {"opt_g": self._optimizer_state(self.g), "opt_d": self._optimizer_state(self.d),
                "scaler_g": {}, "scaler_d": {}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for engine, name in ((self.g, "g"), (self.d, "d")):
            self._load_optimizer_state(engine, state[f"opt_{name}"], name)

    def step(self, loss: torch.Tensor, which: str) -> torch.Tensor:
        """Backward (loss scaled by the engine in fp16), reduce, clip, step; returns the pre-clip
        gradient norm over all ranks' partitions."""
        engine = self.g if which == "g" else self.d
        engine.backward(loss)
        engine.step()
        norm = engine.get_global_grad_norm()
        return torch.as_tensor(float("nan") if norm is None else norm, dtype=torch.float32).detach()

    @torch.no_grad()
    def clamp_weights(self, bound: float) -> None:
        """WGAN weight clipping of D: of the module (used by the next forward) and of this rank's fp32
        master partition (the step writes it back over the module)."""
        for p in self.d.module.parameters():
            p.clamp_(-bound, bound)
        for flat in self.d.optimizer.single_partition_of_fp32_groups:
            flat.clamp_(-bound, bound)  # elementwise, so clamping the flat partition is the same

    def _optimizer_state(self, engine) -> dict[str, Any]:
        """Every rank's partition, gathered (all ranks call this): plain tensors and numbers only,
        so the checkpoint still loads with `torch.load(weights_only=True)`."""
        from accelerate.utils import gather_object

        full = engine.optimizer.state_dict()
        mine = {
            # torch Adam's state over this rank's flat partition, on the CPU: gathered GPU tensors would
            # land on every rank's GPU, a full unpartitioned copy each, undoing ZeRO at checkpoint time.
            "base": _cpu(full["base_optimizer_state"]),
            "fp32": [t.detach().cpu().clone() for t in full["single_partition_of_fp32_groups"]],
            "loss_scaler": _scalars(full["loss_scaler"]),
        }
        return {ZERO_PARTITIONS: gather_object([mine]), "stage": self.stage}

    def _load_optimizer_state(self, engine, saved: dict[str, Any], name: str) -> None:
        """Restore this rank's partition; from a DDP checkpoint, or one saved on another number of
        ranks, only the weights (already in the module) carry over and the optimizer starts afresh."""
        template = engine.optimizer.state_dict()  # the live layout: paddings, loss scaler object
        partitions = saved.get(ZERO_PARTITIONS) if isinstance(saved, dict) else None
        world_size = self.world_size
        if partitions is not None and len(partitions) == world_size and saved.get("stage") == self.stage:
            mine = partitions[self.rank]
            template["base_optimizer_state"] = mine["base"]
            template["single_partition_of_fp32_groups"] = mine["fp32"]
            for key, value in mine["loss_scaler"].items():
                setattr(template["loss_scaler"], key, value)
            engine.optimizer.load_state_dict([template] * world_size, load_from_fp32_weights=True)
            return
        source = "a DDP checkpoint" if partitions is None else "another ZeRO stage or world size"
        warnings.warn(f"opt_{name}: optimizer state from {source} does not fit; weights only, Adam starts afresh",
                      stacklevel=2)  # fmt: skip
        # The fp32 master weights follow the freshly loaded module weights (else the next step
        # would write the old masters back over them).
        engine.optimizer.load_state_dict([template] * world_size, load_optimizer_states=False)


def _import_deepspeed():
    # Picked before the import: without it DeepSpeed probes for CUDA and warns on every rank.
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
    try:
        import deepspeed
    except ImportError:
        raise UserError(f"--strategy deepspeed: the deepspeed package is not installed; {INSTALL_HINT}") from None
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)  # its per-engine INFO lines flood job logs
    # ZeRO's all-gather calls a torch API deprecated in favour of another: a warning per rank per run.
    warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*", category=FutureWarning)
    return deepspeed


def _ensure_process_group(deepspeed) -> None:
    """DeepSpeed needs a process group even on one process; accelerate starts none then."""
    if torch.distributed.is_initialized():
        return  # accelerate's (gloo on CPU, NCCL on GPUs): both engines reuse it
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:  # a free port for this one-process group
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo", verbose=False)


def _engine(deepspeed, model: nn.Module, optimizer, ds_config: dict[str, Any]):
    engine, zero_optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config,
                                                        dist_init_required=False)  # fmt: skip
    return engine, zero_optimizer


def _scalars(obj: Any) -> dict[str, Any]:
    """The numbers of a DeepSpeed loss scaler (its class would not pass weights_only loading)."""
    return {k: v for k, v in vars(obj).items() if isinstance(v, bool | int | float)}


def _cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_cpu(v) for v in tree)
    return tree
