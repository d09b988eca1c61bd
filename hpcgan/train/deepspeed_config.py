"""The DeepSpeed configuration of a run, generated from its RunConfig (and merged with a user's JSON).

No deepspeed import here (torch is cheap next to it): `check()` runs on login nodes and in `hpcgan submit`, where a bad
setting must fail in one line before anything is queued, with or without deepspeed installed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

from hpcgan.errors import UserError
from hpcgan.train.config_schema import RunConfig
from hpcgan.train.precision import resolve

ZERO_STAGES = (1, 2)  # ZeRO-3 shards parameters: the G step needs D's whole module, unsharded
# The marker of optimizer states saved by the DeepSpeed strategy (one partition per rank), so a
# DDP run resuming from such a checkpoint knows it cannot load them, and vice versa.
ZERO_PARTITIONS = "zero_partitions"
# No square brackets (`hpcgan[deepspeed]`): the CLI prints errors through rich, which reads them as markup.
INSTALL_HINT = (
    "install it after torch: pip install --no-build-isolation deepspeed (needs a C++ compiler at first start)"
)


def deepspeed_installed() -> bool:
    try:
        return importlib.util.find_spec("deepspeed") is not None
    except ValueError:  # sys.modules["deepspeed"] is None: its import is blocked
        return False


def check_strategy(config: RunConfig) -> None:
    """One-line errors for the strategy keys' combinations, before any process starts (each key's
    own choices are checked with all the others, by config_keys.check_choices)."""
    t = config.train
    if t.strategy != "deepspeed":
        return
    if t.zero not in ZERO_STAGES:
        raise UserError(
            f"train.zero={t.zero} (--zero): expected 1 | 2 (ZeRO-3 shards parameters, and the G step "
            "reads D's whole module)"
        )
    if config.train.precision == "fp16":
        raise UserError(
            "train.precision=fp16 with --strategy deepspeed: not supported (DeepSpeed's fp16 turns the "
            "weights to half, and its autocast mode has no loss scaler under ZeRO); use bf16 or fp32"
        )
    if not deepspeed_installed():
        raise UserError(f"--strategy deepspeed: the deepspeed package is not installed; {INSTALL_HINT}")
    deepspeed_config(config, world_size=None)  # a conflicting JSON fails here


def deepspeed_config(config: RunConfig, world_size: int | None) -> dict[str, Any]:
    """The config dict for `deepspeed.initialize`, one per network (both get the same). Values we
    generate must agree with the user's JSON (train.deepspeed_config) where it sets them too."""
    t = config.train
    precision = resolve(t.precision, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    generated: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": t.batch_size,
        "gradient_accumulation_steps": 1,  # one D (or G) step per batch, as in DDP
        "gradient_clipping": config.optim.grad_clip,
        "zero_optimization": {"stage": t.zero},
        # The optimizer is ours (torch.optim.Adam from optim.*): DeepSpeed's CPU Adam would need
        # another C++ compile, and its results would differ from the DDP strategy's.
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 2**31 - 1,  # our metrics.jsonl logs
    }
    if t.offload_optimizer == "cpu":
        generated["zero_optimization"]["offload_optimizer"] = {"device": "cpu"}
    if precision == "bf16":
        # Not DeepSpeed's "bf16" section, which turns the weights to bf16: our forwards autocast
        # (train/precision.py) over fp32 weights, as under DDP. No module list: gradients are
        # reduced in fp32, as under DDP (the default list would reduce Linear/Conv grads in bf16).
        generated["torch_autocast"] = {"enabled": True, "dtype": "bfloat16", "lower_precision_safe_modules": []}
    if world_size is not None:
        generated["train_batch_size"] = t.batch_size * world_size
    if not t.deepspeed_config:
        return generated
    user = _read_user_config(Path(t.deepspeed_config))
    for key in ("optimizer", "scheduler"):
        if key in user:
            raise UserError(
                f"--deepspeed-config {t.deepspeed_config}: has an {key!r} section; the optimizer and "
                "learning rates come from optim.* (lr_g, lr_d, beta1, beta2)"
            )
    ours = {"train.batch_size": t.batch_size, "optim.grad_clip": config.optim.grad_clip, "train.zero": t.zero,
            "train.offload_optimizer": t.offload_optimizer, "train.precision": precision}  # fmt: skip
    for path, key in (
        ("train_micro_batch_size_per_gpu", "train.batch_size"),
        ("gradient_accumulation_steps", None),
        ("gradient_clipping", "optim.grad_clip"),
        ("zero_optimization.stage", "train.zero"),
        ("zero_optimization.offload_optimizer.device", "train.offload_optimizer"),
        ("train_batch_size", "train.batch_size"),
    ):
        if path == "train_batch_size" and world_size is None:
            continue  # known once the ranks are up
        found, theirs = _lookup(user, path)
        expected = _lookup(generated, path)[1]
        if path == "zero_optimization.offload_optimizer.device" and expected is None:
            expected = "none"
        if found and theirs != expected:
            ours_text = f"{key}={ours[key]}" if key else "1 (one optimizer step per batch)"
            if path == "train_batch_size":
                ours_text = f"train.batch_size={t.batch_size} x {world_size} ranks = {expected}"
            raise UserError(
                f"--deepspeed-config {t.deepspeed_config}: {path} is {theirs}, but {ours_text}; make them agree"
            )
    if _lookup(user, "zero_optimization.elastic_checkpoint")[1]:
        # Our checkpoint keeps each rank's own partition; DeepSpeed's elastic merge would mix them.
        raise UserError(f"--deepspeed-config {t.deepspeed_config}: zero_optimization.elastic_checkpoint is not "
                        "supported (checkpoints resume on the same world size and stage)")  # fmt: skip
    for name in ("bf16", "fp16", "torch_autocast"):
        section = user.get(name)
        if section is not None and not isinstance(section, dict):
            raise UserError(f"--deepspeed-config {t.deepspeed_config}: {name} is {section!r}; expected a section "
                            "({...}), and precision comes from train.precision anyway")  # fmt: skip
        if (section or {}).get("enabled", False):
            raise UserError(
                f"--deepspeed-config {t.deepspeed_config}: {name}.enabled is true, but precision comes from "
                f"train.precision={precision} (fp32 | bf16); drop the {name!r} section"
            )
    return _merge(user, generated)


def _read_user_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"--deepspeed-config {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--deepspeed-config {path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"--deepspeed-config {path}: expected a JSON object")
    return data


def _lookup(d: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return False, None
        d = d[part]
    return True, d


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s values written over it, nested dicts merged key by key."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
