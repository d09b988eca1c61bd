"""hpcgan/launch/doctor_nodes.py and doctor_report.py: the verdicts on nodes' reports. The reports are
real ones, from the probe run in this process (hpcgan/launch/doctor_checks.py), copied for more
nodes with the one fact that differs on a broken cluster."""

import copy

import pytest
from rich.console import Console

from hpcgan.eval.inception import WEIGHTS_ENV, WEIGHTS_URL
from hpcgan.launch.doctor import checkpoint_size
from hpcgan.launch.doctor_checks import probe
from hpcgan.launch.doctor_nodes import Expected, node_checks
from hpcgan.launch.doctor_report import Check, exit_code, print_checks

TOKEN = ".hpcgan-doctor-test"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("doctor") / "run"
    found = probe(str(run_dir), None, 0, 1, TOKEN)
    assert not list(run_dir.iterdir())  # the probe leaves nothing behind
    return found


def expected(checkpoint_bytes=300_000_000, gpus=0):
    return Expected(gpus, checkpoint_bytes, 5, "r3gan256", WEIGHTS_URL, WEIGHTS_ENV)


def cluster(report, n=3):
    """`report` as rank 0 of n nodes that all see its token, clocks within a millisecond."""
    nodes = []
    for rank in range(n):
        r = copy.deepcopy(report)
        r |= {"node": f"n{rank + 1}", "rank": rank, "world": n, "clock_offsets_s": [0.0, 0.0004, -0.0007][:n],
              "allreduce": {"backend": "gloo", "bytes": 16 * 2**20, "seconds": 0.03, "busbw_gbs": 0.74}}  # fmt: skip
        r["dir"]["token"] = "abc" if rank == 0 else None
        r["dir"]["token_seen"] = None if rank == 0 else "abc"
        nodes.append(r)
    return nodes


def by_name(checks):
    return {c.name: c for c in checks}


def test_a_real_report_here(report, tmp_path):
    assert report["dir"]["error"] is None and report["dir"]["free_bytes"] > 0
    assert report["versions"]["torch"] and report["versions"]["deepspeed"]  # a version, or "not installed"
    checks = by_name(node_checks([report], expected()))
    assert checks["run dir writable"].status == "ok"
    assert {checks[n].status for n in ("run dir shared", "all-reduce", "clock skew")} == {"skip"}
    assert "one node" in checks["all-reduce"].detail


def test_a_healthy_three_node_cluster_passes(report):
    checks = node_checks(cluster(report), expected())
    by = by_name(checks)
    assert by["run dir shared"].status == "ok" and "n2, n3 read what n1 wrote" in by["run dir shared"].detail
    assert by["all-reduce"].status == "ok" and "0.74 GB/s" in by["all-reduce"].detail
    assert by["clock skew"].status == "ok" and "-0.7 ms (n3)" in by["clock skew"].detail
    assert by["versions"].status == "ok" and "every node (3)" in by["versions"].detail
    assert exit_code(checks) == 0


def test_a_node_local_disk_at_the_same_path_fails(report):
    nodes = cluster(report)
    nodes[2]["dir"]["token_seen"] = None
    check = by_name(node_checks(nodes, expected()))["run dir shared"]
    assert check.status == "fail" and check.detail.startswith("n3 do not see the file n1 wrote")
    assert "node-local disk" in check.detail
    assert "every node mounts" in check.fix


def test_space_for_the_checkpoints(report):
    free = report["dir"]["free_bytes"]
    assert by_name(node_checks(cluster(report), expected(free // 20)))["free space"].status == "ok"
    assert by_name(node_checks(cluster(report), expected(free // 8)))["free space"].status == "warn"
    short = by_name(node_checks(cluster(report), expected(free // 4)))["free space"]
    assert short.status == "fail" and "5 checkpoints of r3gan256" in short.detail and "checkpoint.keep" in short.fix


def test_checkpoint_size_counts_g_d_ema_and_adams_moments():
    # dcgan64: G 3,819,393 and D 2,762,689 parameters; 4 bytes x (3 x (G + D) + G); a real 2-step
    # checkpoint of it was 94,457,647 bytes (the config, RNG and loader states on top).
    assert checkpoint_size("dcgan64") == (4 * (3 * (3_819_393 + 2_762_689) + 3_819_393), 3)
    size_wgan, _ = checkpoint_size("wgan64")  # RMSprop: one moment
    assert size_wgan < checkpoint_size("dcgan64")[0]


def test_clock_skew_and_versions_and_a_failed_rendezvous(report):
    nodes = cluster(report)
    for r in nodes:
        r["clock_offsets_s"] = [0.0, 2.5, 0.0]
    assert by_name(node_checks(nodes, expected()))["clock skew"].status == "warn"
    for r in nodes:
        r["clock_offsets_s"] = [0.0, 0.0, -90.0]
    skew = by_name(node_checks(nodes, expected()))["clock skew"]
    assert skew.status == "fail" and "(n3)" in skew.detail and "chrony" in skew.fix
    nodes[1]["versions"]["torch"] = "2.0.0"
    versions = by_name(node_checks(nodes, expected()))["versions"]
    assert versions.status == "fail" and "2.0.0 on n2" in versions.detail
    nodes[2]["dist_error"] = "DistStoreError: timed out"
    broken = by_name(node_checks(nodes, expected()))["all-reduce"]
    assert broken.status == "fail" and "n3" in broken.detail and "MASTER_ADDR" in broken.fix


def test_gpus_asked_for_but_absent_fail(report):
    check = by_name(node_checks(cluster(report), expected(gpus=4)))["GPUs"]
    assert check.status == "fail" and "4 per node requested" in check.detail


def test_lines_name_status_check_detail_and_fix_and_fail_sets_the_exit_code():
    checks = [Check("ok", "a", "fine", "never shown"), Check("fail", "b", "broken [x]", "do y")]
    console = Console(record=True, width=40, soft_wrap=True)
    print_checks(checks, console)
    lines = console.export_text().splitlines()
    assert lines[0].split() == ["ok", "a", "fine"]
    assert lines[1].split() == ["fail", "b", "broken", "[x]", "fix:", "do", "y"]  # markup-looking text survives
    assert exit_code(checks) == 1 and exit_code(checks[:1]) == 0
    with pytest.raises(ValueError):
        Check("fine", "a", "b")
