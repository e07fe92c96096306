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


def help_commands(binary):
    """The first word of each line of the help's `commands:` block."""
    r = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    block = r.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()], r.stdout


def test_help_lists_the_subcommands(tmp_path):
    # Regression: --help listed options and keys but not run, status or
    # test output. Every listed command is one the binary accepts.
    names, text = help_commands(AGENT)
    assert names == ["run", "status", "test"], text
    assert "  test output " in text
    for name in names:
        r = subprocess.run([AGENT, "-c", str(tmp_path / "none.yml"), name],
                           capture_output=True, text=True, timeout=20)
        assert "unknown subcommand" not in r.stderr, (name, r.stderr)


def test_http_listen_help_names_debug_state():
    # `status` reads /debug/state on http.listen: the help says so.
    r = subprocess.run([AGENT, "--help"], capture_output=True, text=True,
                       timeout=20)
    line = next(l for l in r.stdout.splitlines()
                if l.strip().startswith("listen (string, default "
                                        "127.0.0.1:5076)"))
    assert "/debug/state" in line and "empty string: off" in line, line
