"""deploy/compose, deploy/container and deploy/k8s cannot run here (no
container runtime): these tests check that the files parse, that every
config they carry passes the built binaries' --check, and that ports, host
names and volumes agree between the orchestration files and the configs."""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import AGENT, COLLECTOR, SOURCE, check, host_port

yaml = pytest.importorskip("yaml")

DEPLOY = os.path.join(SOURCE, "deploy")
COMPOSE_DIR = os.path.join(DEPLOY, "compose")
BINARY = {"sluice-agent": AGENT, "sluice-collector": COLLECTOR}


def dotenv(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip()
    return env


def interpolate(value, env):
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(3)
        if env.get(name):
            return env[name]
        assert default is not None, "compose variable %s is not set" % name
        return default
    return re.sub(r"\$\$|\$\{(\w+)(:-([^}]*))?\}", sub, value)


@pytest.fixture(scope="module")
def compose():
    with open(os.path.join(COMPOSE_DIR, "docker-compose.yml")) as f:
        raw = yaml.safe_load(f)
    return interpolate(raw, dotenv(os.path.join(COMPOSE_DIR, ".env")))


def service_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def mounts(svc):
    """[(source, target, read_only)] of a service's short-syntax volumes."""
    res = []
    for v in svc.get("volumes", []):
        parts = v.split(":")
        res.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2]))
    return res


def sluice_services(compose):
    res = {}
    for name, svc in compose["services"].items():
        cmd = svc.get("command") or []
        if cmd and cmd[0] in BINARY:
            res[name] = svc
    return res


def config_of(svc):
    """The host file mounted where the service's -c points."""
    cmd = svc["command"]
    path = cmd[cmd.index("-c") + 1]
    for src, dst, ro in mounts(svc):
        if dst == path:
            assert ro, "config mounted writable"
            return os.path.normpath(os.path.join(COMPOSE_DIR, src))
    raise AssertionError("no volume mounted at " + path)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_compose_services(compose):
    assert {"elasticsearch", "kibana", "sluice-collector",
            "sluice-agent"} <= set(compose["services"])
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for src, dst, _ in mounts(svc):
            if src.startswith("."):
                assert os.path.exists(os.path.join(COMPOSE_DIR, src)), src
            else:
                assert src in declared, (name, src)
        for dep in svc.get("depends_on") or []:
            assert dep in compose["services"], (name, dep)
    es = compose["services"]["elasticsearch"]["image"]
    assert re.search(r"elasticsearch:8\.\d+\.\d+$", es), es
    assert compose["services"]["kibana"]["image"].endswith(
        es.rsplit(":", 1)[1])


def test_compose_configs_pass_check(compose, tmp_path):
    svcs = sluice_services(compose)
    assert {s["command"][0] for s in svcs.values()} == set(BINARY)
    for name, svc in svcs.items():
        check(BINARY[svc["command"][0]], config_of(svc), service_env(svc),
              tmp_path)


def test_compose_wiring(compose):
    svcs = compose["services"]
    coll = svcs["sluice-collector"]
    agent = svcs["sluice-agent"]
    ccfg = load_yaml(config_of(coll))
    acfg = load_yaml(config_of(agent))

    # The agent sends to the collector service on its Lumberjack port.
    lj = [i for i in ccfg["inputs"] if i.get("type", "lumberjack") ==
          "lumberjack"]
    assert len(lj) == 1
    _, lj_port = host_port(lj[0]["listen"])
    assert acfg["output"]["type"] == "lumberjack"
    for h in acfg["output"]["hosts"]:
        host, port = host_port(h)
        assert host == "sluice-collector" and port == lj_port, h

    # Published ports are the ones the collector listens on, all addresses.
    http_host, http_port = host_port(ccfg["http"]["listen"])
    assert http_host == "0.0.0.0"
    published = {int(p.rsplit(":", 1)[1].split()[0]) for p in coll["ports"]}
    assert published == {lj_port, http_port}

    # Elasticsearch: the compose service, its port, its password.
    env = service_env(coll)
    url = re.sub(r"\$\{ES_URL(:-[^}]*)?\}", env["ES_URL"],
                 ccfg["elasticsearch"]["hosts"][0])
    assert re.fullmatch(r"http://elasticsearch:9200", url), url
    assert ccfg["elasticsearch"]["password"] == "${ES_PASSWORD}"
    assert env["ES_PASSWORD"] == service_env(
        svcs["elasticsearch"])["ELASTIC_PASSWORD"]

    # State on volumes; the agent's globs inside a volume the log writer
    # shares with it.
    for svc, cfg in ((coll, ccfg), (agent, acfg)):
        assert cfg["data_dir"] in [d for _, d, _ in mounts(svc)]
    agent_mounts = {d: s for s, d, _ in mounts(agent)}
    for inp in acfg["inputs"]:
        for glob in inp["paths"]:
            src = [s for d, s in agent_mounts.items()
                   if glob.startswith(d.rstrip("/") + "/")]
            assert src, glob
            writers = [n for n, s in svcs.items() if n != "sluice-agent"
                       and src[0] in [m[0] for m in mounts(s)]]
            assert writers, "nothing writes into " + src[0]

    # systemd gives 45 s; so does compose: longer than the drain.
    for svc, cfg in ((coll, ccfg), (agent, acfg)):
        grace = int(svc["stop_grace_period"].rstrip("s"))
        assert grace > int(cfg["shutdown_timeout"].rstrip("s"))


# ---- container image -------------------------------------------------------

def dockerfile():
    path = os.path.join(DEPLOY, "container", "Dockerfile")
    lines, cur = [], ""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            lines.append(cur + line)
            cur = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1].strip())
            for ln in lines]


def build_context(compose):
    build = compose["services"]["sluice-collector"]["build"]
    context = os.path.normpath(os.path.join(COMPOSE_DIR, build["context"]))
    return context, build["dockerfile"]


def copy_sources(insts):
    """The sources of every COPY from the build context (not --from)."""
    res = []
    for inst, args in insts:
        if inst != "COPY":
            continue
        words = shlex.split(args)
        if not any(w.startswith("--from") for w in words):
            res += [w.rstrip("/") for w in words[:-1]]
    return res


def test_dockerfile(compose):
    context, df = build_context(compose)
    assert context == os.path.normpath(SOURCE)
    assert os.path.isfile(os.path.join(context, df))
    # Every service running sluice builds that image (none pulls it).
    for name, svc in sluice_services(compose).items():
        assert svc["image"] == compose["services"]["sluice-collector"][
            "image"], name
        assert svc["build"] == compose["services"]["sluice-collector"][
            "build"], name
    insts = dockerfile()
    stages = [a for i, a in insts if i == "FROM"]
    assert len(stages) == 2 and all(s.startswith("debian:12") for s in
                                    stages)
    for src in copy_sources(insts):
        assert os.path.exists(os.path.join(context, src)), src
    runtime = insts[[i for i, (k, _) in enumerate(insts)
                     if k == "FROM"][1]:]
    user = [a for i, a in runtime if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    # The image serves both binaries and the ports the configs use.
    exposed = {int(p) for i, a in runtime if i == "EXPOSE"
               for p in a.split()}
    assert {5044, 5041, 5076} <= exposed
    # The baked-in collector config listens for HTTP on all addresses (its
    # default is loopback, which no published port reaches).
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "SLUICE_HTTP_LISTEN=0.0.0.0:5041" in env, env
    # The runtime installs the packages the .deb depends on.
    apt = " ".join(a for i, a in runtime if i == "RUN")
    for lib in ("libuv1", "libjansson4", "libcurl4", "libyaml-0-2",
                "libpcre2-8-0", "librdkafka1", "libssl3"):
        assert lib in apt, lib


@pytest.mark.skipif(shutil.which("meson") is None, reason="no meson")
def test_dockerfile_copies_enough_to_build(compose, tmp_path):
    """The build stage copies only some directories: they must be all the
    build needs (meson setup, and ninja -n finds every source)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for src in copy_sources(dockerfile()):
        s = os.path.join(SOURCE, src)
        if src.startswith("deploy/"):
            continue          # runtime stage files
        if os.path.isdir(s):
            shutil.copytree(s, ctx / src,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(s, ctx / src)
    b = tmp_path / "b"
    r = subprocess.run(["meson", "setup", str(b), str(ctx), "--prefix=/usr",
                        "-Dtests=false"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    r = subprocess.run(["ninja", "-C", str(b), "-n"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
