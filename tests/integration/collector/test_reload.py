"""SIGHUP: a valid new config is applied (drain, then run again with it)
without losing or duplicating events; a bad one is refused and the
running collector goes on."""

import signal

from conftest import (ResilientSender, assert_exact, event_id, free_port,
                      make_events, send_all, wait_until)


def started_count(c):
    return len(c.find_logs(lambda e: e.get("message") == "started"))


def test_sighup_applies_new_config_without_loss(es, make_collector):
    n = 20000
    c = make_collector(es, {"http": {"listen": "127.0.0.1:%d" % free_port()}},
                       lj_port=free_port())
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    s = ResilientSender(c.lj_port, make_events("r", n), window=250,
                        deadline_s=120)
    s.start()
    wait_until(lambda: s.acked >= n // 4, 30, what="some events acked")

    # A bad config is refused; the collector keeps running and receiving.
    good = dict(c.config)
    c.config = dict(good, spool={"max_bytes": "not a size"})
    c.write_config()
    c.proc.send_signal(signal.SIGHUP)
    c.wait_log(lambda e: "new config refused" in e.get("message", ""),
               what="refusal")
    assert c.running()
    assert started_count(c) == 1

    # A good one is applied: the log level changes to debug.
    c.config = dict(good, log_level="debug")
    c.write_config()
    c.proc.send_signal(signal.SIGHUP)
    c.wait_log(lambda e: e.get("message") == "stopped for reload",
               what="drain for reload")
    wait_until(lambda: started_count(c) == 2, 20, what="second start")
    wait_until(lambda: c.ready() == 200, 15, what="ready after reload")

    s.join_ok(120)
    assert_exact(es, [event_id("r", i) for i in range(n)], timeout=60)
    assert c.find_logs(lambda e: e.get("log.level") == "debug")
    assert c.running()
    assert c.term() == 0


def _ready(c):
    try:
        return c.ready() == 200
    except OSError:
        return False  # between the failed start and the old config's


def _held_port():
    """A TCP port another process (this test) is listening on."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_sighup_unstartable_config_keeps_old_one(es, make_collector,
                                                 tmp_path):
    """Issue 15: a config that passes the schema but cannot start (port
    taken, hosts: [], a data_dir that cannot be created) used to make the
    collector exit 1 on SIGHUP. It must keep running on the old config and
    say why."""
    c = make_collector(es, {"http": {"listen": "127.0.0.1:%d" % free_port()}},
                       lj_port=free_port())
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    good = dict(c.config)
    held = _held_port()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    inputs = [dict(good["inputs"][0])]
    inputs[0]["listen"] = "127.0.0.1:%d" % held.getsockname()[1]
    es_cfg = dict(good["elasticsearch"], hosts=[])
    bad = [
        ("port taken", dict(good, inputs=inputs), r"listen|address"),
        ("hosts: []", dict(good, elasticsearch=es_cfg), r"hosts"),
        ("data_dir", dict(good, data_dir=str(blocker / "data")),
         r"data_dir|directory"),
    ]
    n = 0
    try:
        for what, cfg, pat in bad:
            c.config = cfg
            c.write_config()
            c.proc.send_signal(signal.SIGHUP)
            c.wait_log(
                lambda e, k=n: ("new config refused" in e.get("message", "")
                                or "reload failed" in e.get("message", ""))
                and sum(1 for x in c.find_logs(
                    lambda x: "new config refused" in x.get("message", "")
                    or "reload failed" in x.get("message", ""))) > k,
                what="refusal of %s" % what)
            n += 1
            assert c.running(), what
            wait_until(lambda: _ready(c), 20, what="ready after %s" % what)
            # still receiving on the old port, events arrive
            evs = make_events("k%d" % n, 50)
            send_all(c.lj_port, evs, window=50)
        logs = c.find_logs(lambda e: "new config refused" in
                           e.get("message", "") or "reload failed" in
                           e.get("message", ""))
        assert len(logs) == 3, logs
        import re
        for (what, _, pat), e in zip(bad, logs):
            assert re.search(pat, str(e), re.I), (what, e)
    finally:
        held.close()
    c.config = good
    c.write_config()
    assert c.running()
    assert c.term() == 0
