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
