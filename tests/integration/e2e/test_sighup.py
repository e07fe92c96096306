"""SIGHUP while lines are being appended: the agent drains and restarts
from its (changed) config without losing or re-sending a line; a bad
config is refused and the running agent goes on. (The collector's own
reload is tested in tests/integration/collector/test_reload.py: it closes
connections while it drains, so senders resend their open windows, which
would blur this test's "nothing sent twice" count.)"""

import json
import signal
import time

from conftest import es_count, settle_exact, wait_until


def test_sighup_reload_while_shipping(es, stack):
    lines = 25_000
    col, a, w = stack.shipping(es, "host-h", lines, rate=5000, chunk=100)
    t0 = time.monotonic()
    for k in range(3):
        wait_until(lambda: es_count(es) >= (k + 1) * lines // 5, 60, 0.02,
                   "docs before the reload")
        a.config["inputs"][0]["fields"]["reload"] = str(k + 1)
        a.write_config()
        a.reload()
    # A broken config is refused; the agent keeps shipping.
    with open(a.cfg_path, "w") as f:
        f.write("inputs: [\n")
    starts = len(a.starts())
    a.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any("invalid" in r.get("message", "")
                           for r in a.records(a.run_start)), 10, 0.05,
               "the bad config to be refused")
    assert a.running()
    w.join_ok()
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a])
    assert len(a.starts()) == starts
    assert col.running()
    received = col.metric("sluice_collector_input_events_total")
    labels = {}
    for d in docs:
        r = d["_source"].get("labels", {}).get("reload", "0")
        labels[r] = labels.get(r, 0) + 1
    print("sighup x3: %d docs exact in %.1fs; by config generation %s; "
          "collector received %d" % (len(docs), time.monotonic() - t0,
                                     json.dumps(labels, sort_keys=True),
                                     received))
    # Every reload drained: nothing was sent twice.
    assert received == lines, (received, lines)
    assert set(labels) == {"0", "1", "2", "3"}
    assert a.term() == 0
    assert col.term() == 0
