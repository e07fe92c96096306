"""pytest setup for the Python test helpers in tests/lib."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from suite_hooks import pytest_configure  # noqa: E402,F401
