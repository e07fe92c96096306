"""pytest setup for the Python test helpers in tests/lib."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import register_markers  # noqa: E402


def pytest_configure(config):
    register_markers(config)
