"""Fixtures: tests/lib/kafka_stack.py (mock, es, stack and the checks).
Several collectors in one consumer group fed by a real sluice-agent:
sharing, kill -9, SIGHUP, broker gone; the 200,000-event soak is
marked slow.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from kafka_stack import (es, mock, pytest_collection_modifyitems,  # noqa: F401
                         stack)
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401
