"""kill -9 of the agent or of the collector at random points while lines
are being appended: exact count in ES, zero duplicates.

Kill points are chosen at random by progress (ES doc count), not by time;
the seed is printed (set E2E_SEED to replay one)."""

import os
import random
import time

import pytest

from conftest import Writer, es_count, free_port, settle_exact, wait_until


def make_rng(name):
    seed = int(os.environ.get("E2E_SEED", "0")) or random.randrange(1 << 30)
    print("%s: E2E_SEED=%d" % (name, seed))
    return random.Random(seed)


def kill_points(rng, total, kills, lo=0.08, hi=0.75):
    """`kills` ES counts in (lo*total, hi*total), spread out."""
    span = (hi - lo) / kills
    return [int(total * (lo + span * k + rng.uniform(0.1, 0.9) * span))
            for k in range(kills)]


def agent_kill9(es, stack, lines, kills, rate, seed_name):
    rng = make_rng(seed_name)
    col, a, w = stack.shipping(es, "host-k", lines, rate=rate, chunk=200)
    t0 = time.monotonic()
    for point in kill_points(rng, lines, kills):
        wait_until(lambda: es_count(es) >= point, 60, 0.02,
                   "%d docs before a kill" % point)
        a.kill9()
        # Restart sometimes at once, sometimes after more lines arrived
        # while no agent ran.
        if rng.random() < 0.5:
            more = w.written + rng.randrange(200, 3000)
            wait_until(lambda: w.written >= min(more, lines), 30, 0.02,
                       "writer progress")
        a.start()
    w.join_ok()
    assert w.written == lines
    docs = settle_exact(es, w.messages(), timeout=120, procs=[col, a])
    st = es.stats()["items_by_status"]
    print("agent kill -9 x%d: %d docs exact in %.1fs; ES items %s" % (
        kills, len(docs), time.monotonic() - t0, st))
    # The kills fell while lines were being appended (a kill after the
    # writer finished would not test the restart under load).
    assert w.written == lines
    assert a.term() == 0
    assert col.term() == 0


def test_agent_kill9_while_appending(es, stack):
    """kill -9 of the agent three times while a writer appends 30,000
    lines; restarted each time with the same data dir: every line once."""
    agent_kill9(es, stack, 30_000, 3, 6000, "agent_kill9")


@pytest.mark.slow
def test_agent_kill9_many(es, stack):
    agent_kill9(es, stack, 200_000, 8, 10000, "agent_kill9_many")


def collector_kill9(es, stack, lines, kills, rate, seed_name):
    rng = make_rng(seed_name)
    port = free_port()
    col = stack.collector(es, lj_port=port)
    agents = [stack.agent(col, "host-%d" % k) for k in range(2)]
    writers = [Writer(os.path.join(a.logdir, "app.log"), a.name, lines,
                      rate=rate, chunk=200) for a in agents]
    for w in writers:
        w.start()
    t0 = time.monotonic()
    total = lines * len(agents)
    for point in kill_points(rng, total, kills):
        wait_until(lambda: es_count(es) >= point, 60, 0.02,
                   "%d docs before a kill" % point)
        col.kill9()
        if rng.random() < 0.5:
            # Let the agents notice and retry against a closed port.
            wait_until(lambda: all(a.metric("sluice_agent_output_connected")
                                   == 0 for a in agents), 20, 0.02,
                       "agents to see the collector gone")
        col.start()
        assert col.lj_port == port
    expected = set()
    for w in writers:
        w.join_ok()
        expected |= w.messages()
    docs = settle_exact(es, expected, timeout=120, procs=[col] + agents)
    st = es.stats()["items_by_status"]
    print("collector kill -9 x%d: %d docs exact in %.1fs; ES items %s" % (
        kills, len(docs), time.monotonic() - t0, st))
    for a in agents:
        assert a.term() == 0
    assert col.term() == 0


def test_collector_kill9_while_shipping(es, stack):
    """kill -9 of the collector three times while two agents ship 15,000
    lines each; restarted with the same data dir and port: every line
    once."""
    collector_kill9(es, stack, 15_000, 3, 3000, "collector_kill9")


@pytest.mark.slow
def test_collector_kill9_many(es, stack):
    collector_kill9(es, stack, 100_000, 8, 5000, "collector_kill9_many")


def test_kill9_both_at_once(es, stack):
    """Power loss: agent and collector killed (-9) at the same moment,
    twice, while lines are appended; both restarted (collector on the
    same port and data dir): every line once."""
    rng = make_rng("kill9_both")
    port = free_port()
    lines = 20_000
    col, a, w = stack.shipping(es, "host-p", lines, rate=5000, chunk=100,
                               lj_port=port)
    t0 = time.monotonic()
    for point in kill_points(rng, lines, 2, hi=0.6):
        wait_until(lambda: es_count(es) >= point, 60, 0.02,
                   "%d docs before a kill" % point)
        a.proc.kill()
        col.proc.kill()
        a.kill9()
        col.kill9()
        col.start()
        assert col.lj_port == port
        a.start()
    w.join_ok()
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a])
    print("kill -9 both x2: %d docs exact in %.1fs; ES items %s" % (
        len(docs), time.monotonic() - t0, es.stats()["items_by_status"]))
    assert a.term() == 0
    assert col.term() == 0
