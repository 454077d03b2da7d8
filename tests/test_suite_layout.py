"""How `make test` spreads the suite over its pytest-xdist workers (ADR 0034)."""

from __future__ import annotations

from tests.conftest import xdist_scope as scope


def test_a_files_tests_share_a_worker_and_the_devstack_files_share_one() -> None:
    assert scope("tests/api/test_webhooks.py::test_a") == scope("tests/api/test_webhooks.py::t[1]")
    assert scope("tests/api/test_webhooks.py::test_a") != scope("tests/api/test_schema.py::test_a")
    assert scope("tests/devstack/test_demo.py::test_a") == scope("tests/devstack/test_cli.py::b")
    assert scope("tests/devstack/test_demo.py::test_a") != scope("tests/web/test_demo.py::test_a")
