"""One rank of a real multi-process FID (started by torch.distributed.run in the tests): each rank
takes every world_size-th sample, the sums are all-reduced, rank 0 writes FID and KID."""

import json
import sys

import torch
import torch.distributed as dist

from hpcgan.eval.distances import fid, kid
from hpcgan.eval.feature_stats import FeatureStats
from hpcgan.eval.inception_score import ClassProbStats

out = sys.argv[1]
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
real = torch.randn(400, 16, generator=torch.Generator().manual_seed(1))
fake = torch.randn(400, 16, generator=torch.Generator().manual_seed(2)) * 1.2 + 0.3
stats = []
for data in (real, fake):
    s = FeatureStats(16, keep=400)
    for batch in data[rank::world].split(37):
        s.update(batch)
    stats.append(s.reduce())
# Inception Score sums: batch k of 37 logits goes to split k % 4, whichever rank draws it.
logits = torch.randn(400, 10, generator=torch.Generator().manual_seed(3)) * 3
probs = ClassProbStats(10, splits=4)
for k, batch in enumerate(logits.split(37)):
    if k % world == rank:
        probs.update(batch, k)
inception_score = probs.reduce().score()
if rank == 0:
    kept = [s.features() for s in stats]
    order = [torch.argsort(k[:, 0]) for k in kept]  # gathered rows come rank by rank: compare as sets
    json.dump({"fid": fid(*stats), "n": stats[0].n, "kid": kid(kept[0][order[0]], kept[1][order[1]], 1, 400),
               "is": inception_score},
              open(out, "w"))  # fmt: skip
dist.destroy_process_group()
