"""The gap-free daily counter: concurrent takers get 1..N, a rollback gives its number back, and a new
Asia/Shanghai date starts again at 1."""

import asyncio
from datetime import UTC, date, datetime

import pytest

from shared import clock
from shared.counters import current_number, next_number
from shared.db import make_engine, make_sessionmaker

pytestmark = pytest.mark.pg


@pytest.fixture
async def sessions(service_databases):
    db = service_databases("queue")
    await db.reset()
    engine = make_engine(db.url, pool_size=20, max_overflow=30)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _take(maker, scope: str) -> int:
    async with maker() as session, session.begin():
        number = await next_number(session, scope)
        await asyncio.sleep(0)  # let others queue on the row lock while this transaction is open
        return number


async def test_two_hundred_concurrent_increments_are_one_to_two_hundred(sessions, fixed_clock):
    numbers = await asyncio.gather(*(_take(sessions, "ticket:320102:A") for _ in range(200)))
    assert sorted(numbers) == list(range(1, 201))


async def test_a_rolled_back_number_is_given_to_the_next_taker(sessions, fixed_clock):
    async with sessions() as session:
        assert await next_number(session, "case:320102") == 1
        await session.rollback()
    assert await _take(sessions, "case:320102") == 1
    assert await _take(sessions, "case:320102") == 2


async def test_scopes_are_independent(sessions, fixed_clock):
    assert await _take(sessions, "ticket:320102:A") == 1
    assert await _take(sessions, "ticket:320102:B") == 1
    assert await _take(sessions, "ticket:320102:A") == 2


async def test_simulated_midnight_restarts_at_one_for_the_new_local_date(sessions, fixed_clock):
    fixed_clock.set(datetime(2026, 2, 12, 15, 59, 58, tzinfo=UTC))  # 23:59:58 in Shanghai
    assert [await _take(sessions, "ticket:320102:A") for _ in range(3)] == [1, 2, 3]
    fixed_clock.advance(seconds=2)  # 00:00:00 on the 13th local, still the 12th in UTC
    assert clock.today_local() == date(2026, 2, 13)
    assert await _take(sessions, "ticket:320102:A") == 1
    async with sessions() as session:
        assert await current_number(session, "ticket:320102:A", date(2026, 2, 12)) == 3
        assert await current_number(session, "ticket:320102:A", date(2026, 2, 13)) == 1
