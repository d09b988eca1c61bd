"""One rank of a real multi-process loader run (started by torch.distributed.run in the tests).

Every step does an all-reduce, as DDP would: a rank with fewer batches would leave the others
waiting, and the short gloo timeout turns that into a failure instead of a hang. Writes this
rank's sequence of batch digests and, with --stop-after, the loader state to resume from.
"""

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import torch
import torch.distributed as dist

from hpcgan.data.loader import ShardLoader

parser = argparse.ArgumentParser()
parser.add_argument("shards")
parser.add_argument("out", type=Path)
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--stop-after", type=int, default=None, help="stop after this many batches, save state")
parser.add_argument("--resume", type=Path, default=None)
args = parser.parse_args()

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
loader = ShardLoader(args.shards, batch_size=args.batch, num_workers=args.workers, seed=11)
assert loader.world_size == world and loader.rank == rank
if args.resume:
    loader.load_state_dict(json.loads((args.resume / f"state-{rank}.json").read_text()))

digests, done = [], False
while not done and loader.position.epoch < args.epochs:
    for images, labels in loader:
        step = torch.ones(1)
        dist.all_reduce(step)  # the collective every DDP step makes
        assert step.item() == world
        digests.append(hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest())
        if args.stop_after is not None and len(digests) == args.stop_after:
            done = True
            break

counts = [None] * world
dist.all_gather_object(counts, len(digests))
args.out.mkdir(parents=True, exist_ok=True)
(args.out / f"digests-{rank}.json").write_text(
    json.dumps({"digests": digests, "counts": counts, "batches_per_epoch": len(loader)})
)
(args.out / f"state-{rank}.json").write_text(json.dumps(loader.state_dict()))
dist.destroy_process_group()
