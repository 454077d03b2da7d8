"""Suite-wide fixtures. Tests run on the real PostgreSQL and Redis named by DATABASE_URL and
REDIS_URL (`make test` starts embedded ones when the machine has none)."""

import os
from collections.abc import Iterator
from typing import Any

import pytest

from carehub.core.db_roles import as_owner
from tests.support.celery_worker import purge_queue, running_worker
from tests.support.db_roles import OwnerSwitch, install_owner_helpers

_owner = OwnerSwitch()

# Folders whose files share something outside a worker's own database and queue (the devstack's
# embedded servers, ports and data folder): their files run one after another, on one worker.
ONE_WORKER = ("tests/devstack/",)


def xdist_scope(nodeid: str) -> str:
    """What runs on one worker, one test after another: a test's file, or its folder when that
    is in ONE_WORKER."""
    path = nodeid.split("::", 1)[0]
    return next((folder for folder in ONE_WORKER if path.startswith(folder)), path)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: unknown under -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` runs on every core (pytest-xdist, ADR 0034): a file's tests stay together on
    one worker (module fixtures are set up once), and the files of a folder in ONE_WORKER all on
    the same worker."""
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ByFile(config, log)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """The owner (DATABASE_OWNER_URL) creates and migrates the test database (ADR 0014)..."""
    _owner.enter()
    yield
    _owner.leave()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """...then every test runs as the application's role; the owner drops the database."""
    with django_db_blocker.unblock():
        _owner.leave()
        install_owner_helpers()
    yield
    _owner.enter()


@pytest.fixture
def _db_owner_if_marked(request: pytest.FixtureRequest, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """`@pytest.mark.db_owner`: the test connects as the tables' owner (it drops an index, bulk
    loads with the triggers off...): what the application's role may not do, asked for by name."""
    if request.node.get_closest_marker("db_owner") is None:
        yield
        return
    with django_db_blocker.unblock(), as_owner():
        yield


@pytest.fixture
def _django_db_helper(_db_owner_if_marked: None, _django_db_helper: None) -> None:
    """pytest-django's database access for each test; as the owner when the test asks."""


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[str]:
    """A real worker process consuming the test queue (committed data only); yields its name."""
    purge_queue()
    name = f"it{os.getpid()}"
    with running_worker(name):
        yield name
    purge_queue()
