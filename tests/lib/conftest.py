"""pytest setup for the Python test helpers in tests/lib."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "slow: long-running test, excluded from CI")
