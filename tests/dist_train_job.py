"""One rank of a real multi-process training run (started by torch.distributed.run in the tests):
trains, then all-gathers a digest of its G, D and EMA parameters so the test can compare ranks."""

import hashlib
import json
import sys
from pathlib import Path

import torch.distributed as dist

from hpcgan.train.config import apply_overrides
from hpcgan.train.presets import preset
from hpcgan.train.trainer import Trainer

data, run_dir, out, *overrides = sys.argv[1:]
config = apply_overrides(preset("dcgan64"), overrides)
config.data = data
trainer = Trainer(config, Path(run_dir), resume="none")
trainer.train()


def digest(module) -> str:
    """Parameters only: BatchNorm running statistics are per rank (buffers are not broadcast)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters()):
        h.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


mine = {
    "g": digest(trainer.strategy.unwrap(trainer.strategy.g)),
    "d": digest(trainer.strategy.unwrap(trainer.strategy.d)),
    "ema": digest(trainer.ema.module),
    "world": dist.get_world_size(),
}
every = [None] * dist.get_world_size()
dist.all_gather_object(every, mine)
if dist.get_rank() == 0:
    Path(out).write_text(json.dumps(every))
