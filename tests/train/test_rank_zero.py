"""hpcgan/train/rank_zero.py on two real gloo processes: rank 0 decides, both ranks get the value
or the same one-line error."""

import json
import os
import socket

import torch.distributed as dist
import torch.multiprocessing as mp

from hpcgan.errors import UserError
from hpcgan.train.rank_zero import rank0_decides


def _rank(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    calls = []

    def decide():
        calls.append(rank)
        return {"chosen_by": dist.get_rank()}

    def refuse():
        raise UserError("run dir: held by job 7")

    value = rank0_decides(decide)
    try:
        rank0_decides(refuse)
        error = None
    except UserError as exc:
        error = str(exc)
    with open(f"{out}/rank{rank}.json", "w") as handle:
        json.dump({"value": value, "error": error, "calls": calls}, handle)
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_both_ranks_get_rank0s_value_and_its_error(tmp_path):
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["value"] == {"chosen_by": 0} for r in results)
    assert all(r["error"] == "run dir: held by job 7" for r in results)
    assert results[0]["calls"] == [0] and results[1]["calls"] == []  # only rank 0 ran the decision


def test_a_single_process_decides_itself():
    assert rank0_decides(lambda: 3) == 3
