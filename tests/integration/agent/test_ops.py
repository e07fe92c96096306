"""Operator commands: /debug/state, `status`, `test output`, unknown
subcommands refused, --log-format text."""

import json
import os
import socket
import subprocess
import threading
import time

from conftest import (AGENT, agent_config, lj_output, wait_until,
                      write_lines)
from harness import free_port, run_until_logged


def run(*args, timeout=30):
    return subprocess.run([AGENT] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def cfg_file(workdir, cfg, name="agent.yml"):
    p = os.path.join(workdir, name)
    with open(p, "w") as f:
        json.dump(cfg, f)
    return p


def closed_port():
    """A port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class OneShotServer:
    """Accepts connections; on each, sends `greeting` (may be empty) and
    closes after `hold` seconds."""

    def __init__(self, greeting=b"", hold=5.0):
        self.greeting, self.hold = greeting, hold
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.address = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.received = b""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        if self.greeting:
            s.sendall(self.greeting)
        s.settimeout(self.hold)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                self.received += d
        except OSError:
            pass
        s.close()

    def close(self):
        self.lsock.close()


# ---- unknown subcommands ---------------------------------------------------

def test_unknown_subcommands_refused_without_starting(workdir):
    data = os.path.join(workdir, "data")
    p = cfg_file(workdir, agent_config(data, [workdir + "/*.log"],
                                       {"type": "stdout"}))
    for args, what in ((["bogus"], "unknown subcommand 'bogus'"),
                       (["run", "now"], "unknown argument 'now'"),
                       (["status", "x"], "status takes only --json"),
                       (["status", "--json", "x"], "got 'x'"),
                       (["test"], "usage: test output"),
                       (["test", "input"], "usage: test output")):
        t0 = time.monotonic()
        r = run("-c", p, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert what in r.stderr, (args, r.stderr)
        assert r.stdout == ""
        assert time.monotonic() - t0 < 5
    # Nothing started: the agent creates data_dir and its id at start.
    assert not os.path.exists(data)
    # An unknown option is refused the same way.
    assert run("-c", p, "--bogus").returncode == 2


# ---- /debug/state and status -----------------------------------------------

def test_debug_state_and_status_ready(workdir, agents, ljrecv):
    log = os.path.join(workdir, "app.log")
    write_lines(log, 0, 200, mode="w")
    port = free_port()
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       lj_output(ljrecv))
    cfg["http"] = {"listen": "127.0.0.1:%d" % port}
    a = agents(workdir, cfg)
    a.start()
    wait_until(lambda: ljrecv.count() >= 200, 30, what="200 events")
    size = os.path.getsize(log)

    def acked():
        st = json.loads(a.http("/debug/state")[1])
        f = st["files"]["files"]
        return st if f and f[0]["acked_offset"] == size else None
    st = wait_until(acked, 20, what="acked offset at the end of the file")
    f = st["files"]["files"][0]
    assert f["path"] == log and f["state"] == "open"
    assert f["dataset"] == "app" and f["input"] == 0
    assert f["input_id"] == "app"  # the metrics' input label
    assert f["size"] == f["read_offset"] == size and f["lag_bytes"] == 0
    assert len(f["fingerprint"]) == 16 and f["inode"] == os.stat(log).st_ino
    assert f["last_read"].endswith("Z")
    assert st["files"]["files_total"] == 1 and st["files"]["truncated"] == 0
    out = st["output"]
    assert out["type"] == "lumberjack" and out["targets"] == [ljrecv.address]
    assert out["ready"] is True and out["connected"] == 1
    assert out["connections"][0]["state"] == "up"
    assert out["last_ack"] and out["last_error"] is None
    assert st["queue"]["max_bytes"] > 0 and st["state"] == "running"
    assert st["agent_id"] == a.agent_id

    r = run("-c", a.cfg_path, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ready yes" in r.stdout and ljrecv.address in r.stdout
    row = [ln for ln in r.stdout.splitlines() if ln.endswith(log)]
    assert len(row) == 1, r.stdout
    cols = row[0].split()
    assert cols[0] == "open" and cols[1] == str(size) and \
        cols[2] == str(size) and cols[3] == "0", row
    # --json: /debug/state as it came, as the collector's status --json.
    r = run("-c", a.cfg_path, "status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    js = json.loads(r.stdout)
    assert js["output"]["ready"] is True
    assert js["files"]["files"][0]["acked_offset"] == size
    a.stop()


def test_status_output_not_ready_shows_lag_and_error(workdir, agents):
    log = os.path.join(workdir, "app.log")
    write_lines(log, 0, 50, mode="w")
    port = free_port()
    cfg = agent_config(os.path.join(workdir, "data"), [log], {
        "type": "lumberjack", "hosts": ["127.0.0.1:%d" % closed_port()],
        "backoff": {"base": "50ms", "max": "200ms"}})
    cfg["http"] = {"listen": "0.0.0.0:%d" % port}  # asked on loopback
    a = agents(workdir, cfg)
    a.start()
    wait_until(lambda: json.loads(a.http("/debug/state")[1])["output"]
               ["last_error"], 10, what="a connect error")
    r = run("-c", a.cfg_path, "status")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ready NO" in r.stdout and "connect failed" in r.stdout
    size = os.path.getsize(log)
    row = [ln for ln in r.stdout.splitlines() if ln.endswith(log)][0]
    assert row.split()[3] == str(size), row  # lag: nothing acknowledged
    r = run("-c", a.cfg_path, "status", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert json.loads(r.stdout)["output"]["ready"] is False
    a.stop()


def test_status_agent_unreachable(workdir):
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       {"type": "stdout"})
    cfg["http"] = {"listen": "127.0.0.1:%d" % closed_port()}
    r = run("-c", cfg_file(workdir, cfg), "status")
    assert r.returncode == 2 and "no agent answers" in r.stderr, r.stderr
    cfg["http"] = {"listen": ""}
    r = run("-c", cfg_file(workdir, cfg), "status")
    assert r.returncode == 2 and "http.listen is off" in r.stderr, r.stderr
    cfg["http"] = {"listen": "127.0.0.1:0"}
    r = run("-c", cfg_file(workdir, cfg), "status")
    assert r.returncode == 2 and "no fixed port" in r.stderr, r.stderr


def test_debug_state_bounded(workdir, agents):
    d = os.path.join(workdir, "many")
    os.mkdir(d)
    for i in range(1005):
        with open(os.path.join(d, "f%04d.log" % i), "w") as f:
            f.write('{"n":%d}\n' % i)
    out = os.path.join(workdir, "out.ndjson")
    cfg = agent_config(os.path.join(workdir, "data"), [d + "/*.log"],
                       {"type": "file", "path": out})
    a = agents(workdir, cfg)
    a.start()
    st = wait_until(lambda: (lambda s: s if s["files"]["files_total"] >= 1005
                             else None)(json.loads(a.http("/debug/state")[1])),
                    60, what="1005 files known")
    assert len(st["files"]["files"]) == 1000
    assert st["files"]["truncated"] == st["files"]["files_total"] - 1000
    a.stop()


# ---- test output -------------------------------------------------------------

def test_output_live_receiver_ships_nothing(workdir, ljrecv):
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       lj_output(ljrecv))
    r = run("-c", cfg_file(workdir, cfg), "test", "output")
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ("parse host... OK", "dns lookup... OK", "dial up... OK",
                 "TLS... WARN secure connection disabled",
                 "talk to server... OK"):
        assert step in r.stdout, r.stdout
    assert r.stdout.startswith("lumberjack: %s..." % ljrecv.address)
    assert ljrecv.count() == 0
    assert not os.path.exists(os.path.join(workdir, "data"))


def test_output_closed_port_names_the_step(workdir):
    port = closed_port()
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       {"type": "lumberjack",
                        "hosts": ["127.0.0.1:%d" % port]})
    r = run("-c", cfg_file(workdir, cfg), "test", "output")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "dial up... ERROR 127.0.0.1:%d: Connection refused" % port \
        in r.stdout, r.stdout
    assert "talk to server" not in r.stdout


def test_output_second_host_down_fails(workdir, ljrecv):
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       lj_output(ljrecv, hosts=[
                           ljrecv.address, "127.0.0.1:%d" % closed_port()]))
    r = run("-c", cfg_file(workdir, cfg), "test", "output")
    assert r.returncode == 1
    assert r.stdout.count("dial up... OK") == 1
    assert r.stdout.count("dial up... ERROR") == 1


def test_output_not_lumberjack_or_closing(workdir):
    http = OneShotServer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    closer = OneShotServer(hold=0.0)
    try:
        for srv, what in ((http, 'not a Lumberjack receiver: it answered '
                                 '"HTTP/1.1 400 Bad Request'),
                          (closer, "closed the connection")):
            cfg = agent_config(os.path.join(workdir, "data"),
                               [workdir + "/*.log"],
                               {"type": "lumberjack",
                                "hosts": [srv.address]})
            r = run("-c", cfg_file(workdir, cfg), "test", "output")
            assert r.returncode == 1, r.stdout
            assert "talk to server... ERROR" in r.stdout, r.stdout
            assert what in r.stdout, r.stdout
            assert srv.received == b""  # nothing was sent
    finally:
        http.close()
        closer.close()


def test_output_file(workdir):
    out = os.path.join(workdir, "out", "events.ndjson")
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       {"type": "file", "path": out})
    p = cfg_file(workdir, cfg)
    r = run("-c", p, "test", "output")
    assert r.returncode == 1 and "directory... ERROR" in r.stdout, r.stdout
    os.mkdir(os.path.dirname(out))
    r = run("-c", p, "test", "output")
    assert r.returncode == 0, r.stdout
    assert "directory writable... OK" in r.stdout
    assert not os.path.exists(out)  # nothing created
    with open(out, "w") as f:
        f.write("x\n")
    r = run("-c", p, "test", "output")
    assert r.returncode == 0 and "file appendable... OK" in r.stdout
    assert open(out).read() == "x\n"


def test_output_tcp(workdir):
    srv = OneShotServer()
    try:
        cfg = agent_config(os.path.join(workdir, "data"),
                           [workdir + "/*.log"],
                           {"type": "tcp", "hosts": [srv.address]})
        r = run("-c", cfg_file(workdir, cfg), "test", "output")
        assert r.returncode == 0, r.stdout
        assert r.stdout.startswith("tcp: %s..." % srv.address)
        assert "talk to server... OK" in r.stdout
    finally:
        srv.close()


# ---- self-log format ---------------------------------------------------------

def _run_until_started(workdir, args, cfg):
    return run_until_logged([AGENT, "-c", cfg_file(workdir, cfg)] + args,
                            "started")


def test_log_format_text(workdir):
    cfg = agent_config(os.path.join(workdir, "data"), [workdir + "/*.log"],
                       {"type": "stdout"})
    lines, rc = _run_until_started(workdir, ["--log-format", "text"], cfg)
    assert rc == 0, lines
    started = [ln for ln in lines if " agent: started " in ln]
    assert started, lines
    ts, level, rest = started[0].split(None, 2)
    assert ts.endswith("Z") and len(ts) == 24 and level == "INFO"
    assert "agent.id=" in rest and "http.port=" in rest
    assert not any(ln.startswith("{") for ln in lines), lines
    # The same from the config file; --log-format json wins over it.
    cfg["log_format"] = "text"
    lines, rc = _run_until_started(workdir, [], cfg)
    assert any(" agent: started " in ln for ln in lines), lines
    lines, rc = _run_until_started(workdir, ["--log-format", "json"], cfg)
    assert any(json.loads(ln).get("message") == "started" for ln in lines
               if ln.startswith("{")), lines
    r = run("--log-format", "yaml")
    assert r.returncode == 2 and "json, text" in r.stderr
