"""`--help` says what the code does."""

import subprocess

from conftest import AGENT


def test_close_removed_help_says_grace():
    # Regression: the help said a deleted file closes "as soon as it was
    # read to its end"; since agent/tail_file.c REMOVED_GRACE_MS it closes
    # once it has not grown for 1 s (or close_inactive if shorter).
    r = subprocess.run([AGENT, "--help"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines()
                if l.strip().startswith("close_removed"))
    assert "as soon as" not in line, line
    assert "1 s" in line and "close_inactive" in line, line
