"""Fixtures for the deploy suite: the .deb packages, the systemd units and
the example deployments (compose, container image, Kubernetes).

Nothing here installs anything on the machine: the packages are built from
the build under test (scripts/package -B $SLUICE_BUILD_DIR) into a temporary
directory, inspected with dpkg-deb and unpacked with dpkg-deb -x; the
maintainer scripts run against stub commands. Compose and Kubernetes cannot
run here, so their files are parsed and every config they carry is checked
by the built binaries (--check).
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from harness import AGENT, BUILD, COLLECTOR, SOURCE  # noqa: E402,F401
from suite_hooks import pytest_configure  # noqa: E402,F401

NAMES = ("agent", "collector")


@pytest.fixture(scope="session")
def debs(tmp_path_factory):
    """{name: {"deb": path, "root": unpacked tree}} for agent, collector."""
    out = tmp_path_factory.mktemp("pkg")
    r = subprocess.run([os.path.join(SOURCE, "scripts", "package"),
                        "-B", BUILD, "--no-rebuild", "-Z", "gzip",
                        "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    made = r.stdout.split()
    res = {}
    for name in NAMES:
        deb = [p for p in made
               if os.path.basename(p).startswith("sluice-%s_" % name)]
        assert len(deb) == 1, made
        root = out / ("root-" + name)
        subprocess.run(["dpkg-deb", "-x", deb[0], str(root)], check=True)
        ctrl = out / ("control-" + name)
        subprocess.run(["dpkg-deb", "-e", deb[0], str(ctrl)], check=True)
        res[name] = {"deb": deb[0], "root": str(root), "control": str(ctrl)}
    return res


def dpkg_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True,
                          capture_output=True, text=True).stdout.strip()


def read_unit(path):
    """A unit file as [(section, key, value)], keeping repeated keys
    (configparser refuses them, systemd appends them)."""
    items, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            items.append((section, k.strip(), v.strip()))
    return items


def unit_values(items, key):
    return [v for _, k, v in items if k == key]


def check(binary, path, env, cwd):
    """binary --check -c path with env added; must say ok (exit 0)."""
    env = dict(os.environ, **env)
    r = subprocess.run([binary, "--check", "-c", path], capture_output=True,
                       text=True, timeout=30, env=env, cwd=str(cwd))
    assert r.returncode == 0, r.stdout + r.stderr


def host_port(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)
