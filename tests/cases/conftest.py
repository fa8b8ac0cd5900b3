"""The cases service seeded for case tests (centre A's departments and staff, item ITEM1: promised 5, legal
20); a test module that needs other items defines its own `cases`."""

import pytest

from tests.cases.case_support import item, seed


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        await item(client, "ITEM1")
        yield client
