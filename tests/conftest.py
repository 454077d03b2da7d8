"""Suite-wide fixtures. Tests run on the real PostgreSQL and Redis named by DATABASE_URL and
REDIS_URL (`make test` starts embedded ones when the machine has none)."""

import os
from collections.abc import Iterator

import pytest

from tests.support.celery_worker import purge_queue, running_worker


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[str]:
    """A real worker process consuming the test queue (committed data only); yields its name."""
    purge_queue()
    name = f"it{os.getpid()}"
    with running_worker(name):
        yield name
    purge_queue()
