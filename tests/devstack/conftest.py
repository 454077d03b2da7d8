import os

import pytest

from carehub.devstack.services import LOCAL_POSTGRES, LOCAL_REDIS, postgres_accepts, redis_answers


@pytest.fixture(scope="session")
def service_urls() -> dict[str, str]:
    """DATABASE_URL and REDIS_URL of real servers: the environment's, else the local defaults.

    DATABASE_URL here is the owner's (DATABASE_OWNER_URL when set): tests create databases."""
    database_url = os.environ.get("DATABASE_OWNER_URL") or os.environ.get("DATABASE_URL")
    if not database_url and postgres_accepts(LOCAL_POSTGRES):
        database_url = f"postgres://postgres@{LOCAL_POSTGRES}/carehub"
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url and redis_answers(LOCAL_REDIS):
        redis_url = f"redis://{LOCAL_REDIS}/0"
    if not (database_url and redis_url):
        pytest.fail("needs PostgreSQL and Redis: run the suite through `make test`")
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
