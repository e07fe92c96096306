"""Nothing in the repository cites a file of the machine it was written on
(cheap: reads files, runs nothing).

Regression: tests/esdouble/README.md and collector/es_setup.h cited the
Elasticsearch reference by a path outside the repository, which no reader
of the repository has; they cite the public docs and DESIGN.md now.
bench/RESULTS.md is left out: it records the command lines of past runs,
build directories included.
"""

import os
import subprocess

SOURCE = os.environ.get(
    "SLUICE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Spelled in two pieces so that this file does not find itself.
OUTSIDE = "/wo" + "rk/"


def tracked_files():
    try:
        out = subprocess.run(["git", "-C", SOURCE, "ls-files"],
                             capture_output=True, text=True, check=True,
                             timeout=20).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = []
        for d, _, names in os.walk(SOURCE):
            if "/." in d or "/build" in d:
                continue
            out += [os.path.relpath(os.path.join(d, n), SOURCE)
                    for n in names]
    return [f for f in out if f and not f.startswith("bench/")]


def test_no_path_outside_repository():
    bad = []
    for rel in tracked_files():
        try:
            with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE in line:
                bad.append("%s:%d: %s" % (rel, n, line.strip()))
    assert not bad, "\n".join(bad)
