"""Odd lines: each handled by its rule, and the agent keeps running."""

import os

from conftest import agent_config, lj_output, wait_until


def test_odd_lines(workdir, ljrecv, agents):
    log = os.path.join(workdir, "odd.log")
    big = b'{"msg":"' + b"y" * (10 << 20) + b'"}'
    with open(log, "wb") as f:
        f.write(b'{"msg":"broken", "level":\n')        # malformed JSON
        f.write(big + b"\n")                           # 10 MB line
        f.write(b'{"msg":"bad \xff\xfe utf8"}\n')      # invalid UTF-8
        f.write(b"\n")                                 # empty: no event
        f.write(b"   \r\n")                            # blank: no event
        f.write(b"plain text line\r\n")                # not JSON, CRLF
        f.write(b'{"msg":"last"}\n')
    a = agents(workdir, agent_config(os.path.join(workdir, "data"), [log],
                                     lj_output(ljrecv)))
    a.start()
    ljrecv.wait_for(5, timeout=60)
    # Nothing more comes: blank lines make no event.
    wait_until(lambda: a.metric("sluice_agent_lines_read_total") == 7, 10,
               what="all 7 lines read")
    assert a.metric("sluice_agent_lines_blank_total") == 2
    evs = sorted(ljrecv.events[:], key=lambda e: e["log"]["offset"])
    assert len(evs) == 5
    broken, longe, utf, plain, last = evs

    assert broken["message"].startswith('{"msg":"broken"')
    assert "sluice_json_parse_failure" in broken.get("tags", [])

    assert "truncated" in longe["log"].get("flags", [])
    assert len(longe["message"].encode()) <= (1 << 20)
    assert longe["log"]["offset"] == len(b'{"msg":"broken", "level":\n')

    assert "\ufffd" in utf["message"]

    assert plain["message"] == "plain text line"   # \r stripped
    assert last["message"] == "last"
    assert a.alive()
    assert a.stop() == 0


def test_truncated_line_keeps_file_order(workdir, agents):
    """Issue 15: with `workers: 2` a truncated over-long line was emitted
    after the lines that follow it, and the rest of a truncated line could
    become an event of its own. Every line comes in file order; each long
    line is one truncated event; its rest is dropped and counted."""
    from conftest import LineReceiver
    r = LineReceiver()
    try:
        log = os.path.join(workdir, "long.log")
        n_long, n_short = 30, 40
        with open(log, "wb") as f:
            for k in range(n_long):
                for i in range(n_short):
                    f.write(b"short %d.%d\n" % (k, i))
                f.write(b"L%d " % k + b"y" * 3000 + b"\n")
            f.write(b"the end\n")
        out = {"type": "tcp", "format": "json_lines", "hosts": [r.address]}
        cfg = agent_config(os.path.join(workdir, "data"), [log], out,
                           input={"parser": "raw", "max_line_bytes": 1024})
        cfg["workers"] = 2
        a = agents(workdir, cfg)
        a.start()
        want = n_long * (n_short + 1) + 1
        wait_until(lambda: r.count() >= want, 60, what="%d events" % want)
        wait_until(lambda: a.metric("sluice_agent_lines_truncated_total")
                   == n_long, 10, what="truncations counted")
        evs = r.events()
        offs = [e["log"]["offset"] for e in evs]
        assert offs == sorted(offs), "events out of file order"
        assert len(evs) == want
        longs = [e for e in evs if e["message"].startswith("L")]
        assert len(longs) == n_long
        for e in longs:
            assert "truncated" in e["log"].get("flags", [])
            assert len(e["message"]) <= 1024
        assert not [e for e in evs if e["message"].startswith("y")]
        dropped = a.metric("sluice_agent_truncated_bytes_dropped_total")
        assert dropped == sum(len(b"L%d " % k) + 3000 - 1024
                              for k in range(n_long))
        assert a.stop() == 0
    finally:
        r.close()
