"""scripts/package: the .deb packages built from the build under test, and
the systemd units they carry (deploy/systemd)."""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import (BUILD, NAMES, SOURCE, dpkg_field, read_unit,
                      unit_values)


def project_version():
    with open(os.path.join(BUILD, "meson-info",
                           "intro-projectinfo.json")) as f:
        return json.load(f)["version"]


def needed_packages(binary):
    """The Debian packages that provide the binary's own DT_NEEDED
    libraries (not their dependencies: those are their packages' job)."""
    dyn = subprocess.run(["readelf", "-d", binary], check=True,
                         capture_output=True, text=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dyn))
    assert needed
    where = {}
    for line in subprocess.run(["ldd", binary], check=True,
                               capture_output=True, text=True
                               ).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            where[m.group(1)] = m.group(2)
        m = re.match(r"\s*(/\S+) \(", line)     # the dynamic loader
        if m:
            where[os.path.basename(m.group(1))] = m.group(1)
    pkgs = set()
    for soname in needed:
        path = where[soname]
        real = os.path.realpath(path)
        for cand in (path, real, "/usr" + path, "/usr" + real):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True,
                               text=True)
            if r.returncode == 0:
                pkgs.add(r.stdout.split(":")[0])
                break
        else:
            raise AssertionError("no package provides " + path)
    return pkgs


@pytest.mark.parametrize("name", NAMES)
def test_control_fields(debs, name):
    deb = debs[name]["deb"]
    pkg = "sluice-" + name
    assert dpkg_field(deb, "Package") == pkg
    assert dpkg_field(deb, "Version") == project_version() + "-1"
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert dpkg_field(deb, "Architecture") == arch
    assert os.path.basename(deb) == "%s_%s-1_%s.deb" % (
        pkg, project_version(), arch)
    assert dpkg_field(deb, "Maintainer")
    assert dpkg_field(deb, "Description").startswith("sluice ")
    depends = {d.split()[0] for d in dpkg_field(deb, "Depends").split(", ")}
    assert "adduser" in depends
    # Every shared library the binary loads comes from a package it
    # depends on (the ASan runtime too, in a sanitized build).
    binary = os.path.join(debs[name]["root"], "usr", "bin", pkg)
    missing = needed_packages(binary) - depends
    assert not missing, (missing, depends)
    assert {"libc6", "libuv1", "libjansson4"} <= depends


@pytest.mark.parametrize("name", NAMES)
def test_contents(debs, name):
    pkg = "sluice-" + name
    out = subprocess.run(["dpkg-deb", "--contents", debs[name]["deb"]],
                         check=True, capture_output=True, text=True).stdout
    files = {}
    for line in out.splitlines():
        f = line.split()
        files[f[-1].lstrip(".")] = (f[0], f[1])
    want = {
        "/usr/bin/" + pkg: "-rwxr-xr-x",
        "/etc/sluice/%s.yml" % name: "-rw-r--r--",
        "/lib/systemd/system/%s.service" % pkg: "-rw-r--r--",
        "/usr/share/doc/%s/copyright" % pkg: "-rw-r--r--",
        "/usr/share/doc/%s/changelog.Debian.gz" % pkg: "-rw-r--r--",
        "/usr/share/doc/%s/README.md" % pkg: "-rw-r--r--",
    }
    regular = {p: m for p, (m, _) in files.items() if m.startswith("-")}
    assert regular == want
    assert {owner for _, owner in files.values()} == {"root/root"}


@pytest.mark.parametrize("name", NAMES)
def test_conffile_is_the_example_config(debs, name):
    with open(os.path.join(debs[name]["control"], "conffiles")) as f:
        assert f.read().split() == ["/etc/sluice/%s.yml" % name]
    with open(os.path.join(debs[name]["root"], "etc", "sluice",
                           name + ".yml")) as f:
        packaged = f.read()
    with open(os.path.join(SOURCE, "deploy", "config", name + ".yml")) as f:
        assert packaged == f.read()
    with open(os.path.join(debs[name]["control"], "md5sums")) as f:
        sums = f.read()
    assert "etc/sluice/%s.yml" % name in sums
    assert "usr/bin/sluice-" + name in sums


@pytest.mark.parametrize("name", NAMES)
def test_packaged_binary_runs_and_accepts_its_config(debs, name, tmp_path):
    root = debs[name]["root"]
    binary = os.path.join(root, "usr", "bin", "sluice-" + name)
    r = subprocess.run([binary, "--version"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sluice-%s %s" % (name, project_version()))
    env = dict(os.environ, SLUICE_DATA_DIR=str(tmp_path / "data"))
    r = subprocess.run([binary, "--check", "-c",
                        os.path.join(root, "etc", "sluice", name + ".yml")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


SCRIPTS = ("postinst", "prerm", "postrm")


@pytest.mark.parametrize("name", NAMES)
def test_maintainer_scripts_are_valid_sh(debs, name):
    for script in SCRIPTS:
        p = os.path.join(debs[name]["control"], script)
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode == 0o755, (script, oct(mode))
        with open(p) as f:
            assert f.readline() == "#!/bin/sh\n"
        r = subprocess.run(["sh", "-n", p], capture_output=True, text=True)
        assert r.returncode == 0, (script, r.stderr)


STUBS = ("getent", "adduser", "install", "rm", "rmdir", "systemctl",
         "deb-systemd-helper", "deb-systemd-invoke")


def run_script(debs, name, tmp_path, args, user_exists=False,
               was_enabled=True):
    """Run a maintainer script with every command that would change the
    machine replaced by a stub that logs its arguments."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    for cmd in STUBS:
        rc = 0
        if cmd == "getent" and not user_exists:
            rc = 2
        p = stubs / cmd
        body = '#!/bin/sh\necho "%s $*" >> "%s"\n' % (cmd, log)
        if cmd == "deb-systemd-helper":
            body += ('case "$*" in *was-enabled*) exit %d;; esac\n'
                     % (0 if was_enabled else 1))
        p.write_text(body + "exit %d\n" % rc)
        p.chmod(0o755)
    env = {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % stubs}
    script = os.path.join(debs[name]["control"], args[0])
    r = subprocess.run(["sh", "-e", script] + list(args[1:]), env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize("name", NAMES)
def test_postinst_fresh_install(debs, name, tmp_path):
    pkg = "sluice-" + name
    calls = run_script(debs, name, tmp_path, ["postinst", "configure"])
    add = [c for c in calls if c.startswith("adduser ")]
    assert len(add) == 1 and "--system" in add[0] and add[0].endswith(pkg)
    if not os.path.isdir("/var/lib/" + pkg):    # not installed here
        assert "install -d -o %s -g %s -m 0700 /var/lib/%s" % (
            pkg, pkg, pkg) in calls
    assert "deb-systemd-helper enable %s.service" % pkg in calls
    if not os.path.isdir("/run/systemd/system"):
        # No systemd running (container, chroot): nothing is started.
        assert not [c for c in calls if c.startswith(("systemctl",
                                                      "deb-systemd-invoke"))]
    else:
        assert "deb-systemd-invoke start %s.service" % pkg in calls


@pytest.mark.parametrize("name", NAMES)
def test_postinst_upgrade_keeps_user_and_choice(debs, name, tmp_path):
    pkg = "sluice-" + name
    calls = run_script(debs, name, tmp_path,
                       ["postinst", "configure", "0.0.9-1"],
                       user_exists=True, was_enabled=False)
    assert not [c for c in calls if c.startswith("adduser")]
    # Disabled by the administrator: stays disabled.
    assert "deb-systemd-helper update-state %s.service" % pkg in calls
    assert "deb-systemd-helper enable %s.service" % pkg not in calls
    if os.path.isdir("/run/systemd/system"):
        assert "deb-systemd-invoke restart %s.service" % pkg in calls


@pytest.mark.parametrize("name", NAMES)
def test_remove_and_purge(debs, name, tmp_path):
    pkg = "sluice-" + name
    calls = run_script(debs, name, tmp_path, ["prerm", "upgrade", "0.2.0-1"])
    assert calls == []          # an upgrade restarts once, in postinst
    calls = run_script(debs, name, tmp_path, ["postrm", "remove"])
    assert "deb-systemd-helper mask %s.service" % pkg in calls
    assert not [c for c in calls if c.startswith("rm ")]   # data kept
    calls = run_script(debs, name, tmp_path, ["postrm", "purge"])
    assert "deb-systemd-helper purge %s.service" % pkg in calls
    assert "rm -rf /var/lib/%s" % pkg in calls


# ---- the units ------------------------------------------------------------

def unit_path(name):
    return os.path.join(SOURCE, "deploy", "systemd",
                        "sluice-%s.service" % name)


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text)
    assert m, text
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60,
                              "h": 3600}[m.group(2)]


@pytest.mark.parametrize("name", NAMES)
def test_unit_settings(debs, name):
    pkg = "sluice-" + name
    packaged = os.path.join(debs[name]["root"], "lib", "systemd", "system",
                            pkg + ".service")
    with open(packaged) as a, open(unit_path(name)) as b:
        assert a.read() == b.read()
    u = read_unit(unit_path(name))
    one = {k: v for _, k, v in u}
    assert one["Type"] == "simple"
    assert one["User"] == pkg and one["Group"] == pkg
    assert one["ExecStart"] == "/usr/bin/%s -c /etc/sluice/%s.yml" % (
        pkg, name)
    reload = unit_values(u, "ExecReload")
    assert reload[-1] == "/bin/kill -HUP $MAINPID"
    assert reload[0] == "/usr/bin/%s --check -c /etc/sluice/%s.yml" % (
        pkg, name)
    assert one["StateDirectory"] == pkg
    assert one["ConfigurationDirectory"] == "sluice"
    assert one["ProtectSystem"] == "strict"
    assert one["NoNewPrivileges"] == "yes"
    assert one["LimitNOFILE"] == "65536"
    assert one["Restart"] == "on-failure"
    assert one["SystemCallFilter"] == "@system-service"
    if name == "agent":
        assert one["ProtectHome"] == "read-only"
        assert one["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
        assert one["AmbientCapabilities"] == "CAP_DAC_READ_SEARCH"
    else:
        assert one["ProtectHome"] == "yes"
        assert one["CapabilityBoundingSet"] == ""
        assert one["AmbientCapabilities"] == ""
    # systemd must not SIGKILL a drain that the config still allows.
    with open(os.path.join(SOURCE, "deploy", "config", name + ".yml")) as f:
        m = re.search(r"^shutdown_timeout:\s*(\S+)", f.read(), re.M)
    assert m
    assert duration_s(one["TimeoutStopSec"]) > duration_s(m.group(1))
    assert one["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed")
@pytest.mark.parametrize("name", NAMES)
def test_unit_verifies(debs, name, tmp_path):
    """systemd-analyze verify checks that the commands exist: run it on a
    copy that points at the unpacked package's binary. Warnings (unknown
    keys, bad values) fail too, although verify exits 0 on them."""
    pkg = "sluice-" + name
    root = debs[name]["root"]
    with open(unit_path(name)) as f:
        text = f.read().replace("/usr/bin/" + pkg,
                                os.path.join(root, "usr", "bin", pkg))
    copy = tmp_path / (pkg + ".service")
    copy.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # The hardening stays where it is: exposure at most 2.5 (the threshold
    # counts tenths; "OK" is below 5.0; agent 1.8, collector 1.5 today).
    r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        "--threshold=25", str(copy)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
