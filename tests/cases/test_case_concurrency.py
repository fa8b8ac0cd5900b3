"""Case numbers under concurrency (issue 21, acceptance): registrations arriving at once get the daily sequence
`<center>-<yyyymmdd>-<6 digits>` unique and without a gap, each centre its own. The fixed clock stands at
Thu 12 Feb 2026 09:00 local, so the date part is 20260212."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.cases.case_support import A, B, case_body, clerk, events, item, seed

# The service's default pool (5 + 5) keeps ten registrations in the database at once, all contending for the
# day's counter row; the other requests wait for a connection, here for up to a minute on a slow machine rather
# than the default 10 s. (A bigger pool is slower, not faster: the counter row serialises them anyway, and more
# transactions holding a place in line means a longer wait for the one holding the row lock.)
POOL = {"db_pool_timeout": 60.0}


@pytest.fixture
async def cases(service_client):
    async with service_client("cases", **POOL) as client:
        await seed(client)
        await item(client)
        await item(client, center=B)
        yield client


async def register(client: Any, headers: dict[str, str], center: str) -> dict[str, Any]:
    r = await client.post("/cases", json=case_body(center=center), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_200_registrations_at_once_number_1_to_200_without_a_gap(cases, tokens):
    headers = clerk(tokens)
    made = await asyncio.gather(*(register(cases, headers, A) for _ in range(200)))
    assert sorted(m["case_no"] for m in made) == [f"{A}-20260212-{n:06d}" for n in range(1, 201)]
    # each number was published exactly once
    published = [e["data"]["case"]["case_no"] for e in await events(cases, "case.accepted")]
    assert sorted(published) == sorted(m["case_no"] for m in made)


async def test_200_registrations_at_once_get_200_different_lookup_codes(cases, tokens):
    headers = clerk(tokens)
    made = await asyncio.gather(*(register(cases, headers, A) for _ in range(200)))
    assert len({m["lookup_code"] for m in made}) == 200


async def test_a_second_centre_counts_its_own_sequence_from_1(cases, tokens):
    in_a, in_b = clerk(tokens), clerk(tokens, "clerk-b1", center=B)
    made = await asyncio.gather(*(register(cases, in_a if i % 2 else in_b, A if i % 2 else B) for i in range(100)))
    numbers = sorted(m["case_no"] for m in made)
    assert numbers == sorted([f"{A}-20260212-{n:06d}" for n in range(1, 51)] +
                             [f"{B}-20260212-{n:06d}" for n in range(1, 51)])
