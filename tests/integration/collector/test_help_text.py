"""`--help` says what the code does (texts checked against the source)."""

import os
import re
import subprocess

from conftest import COLLECTOR, SOURCE


def test_max_inflate_ratio_help_names_ratio_grace():
    # Regression: the help said "past 1 MiB" while the decoder checks the
    # ratio only past SL_LJ_RATIO_GRACE (4 MiB).
    with open(os.path.join(SOURCE, "proto", "sl_lj.h")) as f:
        mib = int(re.search(r"#define SL_LJ_RATIO_GRACE_MIB (\d+)",
                            f.read()).group(1))
    r = subprocess.run([COLLECTOR, "--help"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines()
                if "max_inflate_ratio" in l)
    assert "past %d MiB" % mib in line, line


def test_help_lists_the_subcommands(tmp_path):
    # Regression: --help listed options and keys but no subcommand. Every
    # listed command is one the binary accepts.
    r = subprocess.run([COLLECTOR, "--help"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    block = r.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    names = [l.split()[0] for l in block.splitlines()]
    assert names == ["replay", "trace", "retention", "test", "status"], \
        r.stdout
    assert "  test output " in block
    for name in names:
        c = subprocess.run([COLLECTOR, "-c", str(tmp_path / "none.yml"),
                            name], capture_output=True, text=True,
                           timeout=20)
        assert "unknown subcommand" not in c.stderr, (name, c.stderr)


def test_unknown_subcommand_names_test_output(tmp_path):
    # Regression: the refusal listed "test" where the command is
    # "test output" (the agent's says "test output").
    r = subprocess.run([COLLECTOR, "-c", str(tmp_path / "none.yml"),
                        "stauts"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2, r.stderr
    assert ("unknown subcommand 'stauts' (commands: replay, trace, "
            "retention, test output, status; see --help)") in r.stderr
