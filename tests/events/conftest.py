"""Fixtures shared by the event tests: the queue service's database (it has the outbox) and sessions on it."""

import pytest

from shared.db import make_engine, make_sessionmaker


@pytest.fixture
async def queue_db(service_databases):
    db = service_databases("queue")
    await db.reset()
    return db


@pytest.fixture
async def sessions(queue_db):
    engine = make_engine(queue_db.url, application_name="test-events")
    yield make_sessionmaker(engine)
    await engine.dispose()
