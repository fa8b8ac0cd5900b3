"""The cases service keeps read copies of the queue's windows (window.upserted) and identity's staff
(user.upserted): the event with the newest outbox sequence wins, an older or repeated one changes nothing,
and a user's contacts are never copied."""

from __future__ import annotations

import pytest

from services.cases.consumers import CONSUMERS
from shared.events.topics import topic_for
from tests.cases.builders import A, apply, user_event, window_event


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        yield client


def test_the_copies_read_the_producers_topics():
    topics = {type_: spec.topics for spec in CONSUMERS for type_ in spec.handlers}
    assert topics["window.upserted"] == (topic_for("queue").name,)
    assert topics["user.upserted"] == (topic_for("identity").name,)


async def test_a_window_copy_follows_the_newest_event_and_ignores_an_older_one(cases):
    await apply(cases, window_event(5, a_clerk="u-a", department="D01"))
    (first,) = await cases.db.fetch("SELECT * FROM windows")
    await apply(cases, window_event(3, department="D09", name="旧名字"), window_event(5, name="重发"))
    (unchanged,) = await cases.db.fetch("SELECT * FROM windows")
    await apply(cases, window_event(8, department="D02", b_clerk="u-b", active=False),
                window_event(2, "W04", department="D03"))
    rows = await cases.db.fetch("SELECT * FROM windows ORDER BY number")
    assert (first["center_id"], first["number"], first["name"], first["department"], first["a_clerk"],
            first["active"], first["last_event_sequence"]) == (A, "W03", "W03 号窗口", "D01", "u-a", True, 5)
    assert dict(unchanged) == dict(first)
    assert [(r["number"], r["department"], r["a_clerk"], r["b_clerk"], r["active"], r["last_event_sequence"])
            for r in rows] == [("W03", "D02", None, "u-b", False, 8), ("W04", "D03", None, None, True, 2)]


async def test_a_staff_copy_follows_the_newest_event_and_never_copies_contacts(cases):
    await apply(cases, user_event(4, display_name="李四", post_title="综合受理岗", phone_masked="138****5678",
                                  phone_sealed="c2VhbGVk", email_masked="l***@example.cn"))
    await apply(cases, user_event(2, display_name="旧名字"), user_event(4, display_name="重发"))
    (kept,) = await cases.db.fetch("SELECT * FROM staff")
    await apply(cases, user_event(7, display_name="李四", role="chief_rep", department="D02", active=False))
    (newer,) = await cases.db.fetch("SELECT * FROM staff")
    assert (kept["display_name"], kept["post_title"], kept["last_event_sequence"]) == ("李四", "综合受理岗", 4)
    assert "138****5678" not in str(dict(kept)) and "c2VhbGVk" not in str(dict(kept))
    assert (newer["display_name"], newer["role"], newer["department"], list(newer["centers"]), newer["active"],
            newer["last_event_sequence"]) == ("李四", "chief_rep", "D02", [A], False, 7)
    assert newer["post_title"] is None  # the full state replaces the row: identity cleared it


async def test_an_event_without_a_sequence_is_refused_rather_than_applied_unordered(cases):
    event = window_event(1).model_copy(update={"sequence": None})
    with pytest.raises(ValueError, match="sequence"):
        await apply(cases, event)
    assert await cases.db.fetch("SELECT * FROM windows") == []
