"""hpcgan/launch/rendezvous.py: the rendezvous port every task of a job derives from its id."""

from hpcgan.launch.rendezvous import PORT_RANGE, master_port


def test_the_port_is_below_the_ephemeral_range_and_stable_per_job():
    ports = {job: master_port(job) for job in [str(i) for i in range(2000)] + ["123_4", "123_5"]}
    low, high = PORT_RANGE
    assert all(low <= p < high for p in ports.values())
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        ephemeral_low = int(handle.read().split()[0])
    assert high <= ephemeral_low  # client sockets of the node never hold it
    assert master_port("76") == ports["76"]  # a requeued job (same id) meets at the same port
    assert len(set(ports.values())) > 1500  # neighbouring jobs rarely share one
