"""pytest hooks every suite shares. A conftest re-exports them:

    from suite_hooks import pytest_configure  # noqa: F401
    from suite_hooks import pytest_runtest_makereport  # noqa: F401

(kept apart from harness.py, which stays stdlib-only for the benches).
"""

import pytest

from harness import register_markers


def pytest_configure(config):
    register_markers(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (item.rep_setup, rep_call,
    rep_teardown), so that fixtures can print log tails on failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
