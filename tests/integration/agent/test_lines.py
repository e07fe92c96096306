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
    wait_until(lambda: a.metric("sluice_agent_events_read_total") == 7, 10,
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
