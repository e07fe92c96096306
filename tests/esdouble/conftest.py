"""pytest setup for the Elasticsearch test double's own tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

from esdouble_fixture import start_esdouble  # noqa: E402
from suite_hooks import pytest_configure  # noqa: E402,F401


@pytest.fixture(scope="module")
def es_shared():
    with start_esdouble() as es:
        yield es


@pytest.fixture
def es(es_shared):
    """A double with empty data, no faults and zeroed stats."""
    es_shared.reset()
    yield es_shared
