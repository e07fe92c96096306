"""SIGHUP: a valid new config is applied (drain, then run again with it)
without losing or duplicating events; a bad one is refused and the
running collector goes on."""

import signal

from conftest import (ResilientSender, assert_exact, event_id, free_port,
                      make_events, wait_until)


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
