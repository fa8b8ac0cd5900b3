"""The queue keeps a copy of identity's staff from user.upserted (the newest event per user wins), and a
window's sign-in then shows the clerk's name, post title and photo (岗位公示)."""

from __future__ import annotations

from services.queue.consumers import CONSUMERS
from shared.events.catalog import UserUpserted
from shared.events.envelope import Envelope
from shared.events.topics import topic_for
from tests.queue.builders import A, center, outbox, service, window

CLERK = "u-clerk-7"
PHOTO = "/api/auth/public/users/u-clerk-7/photo?v="


def user_event(sequence: int, **changes) -> Envelope:
    user = UserUpserted(**{"id": CLERK, "display_name": "张三", "post_title": "综合受理岗", "photo_url": None,
                           "role": "clerk", "centers": [A], "department": "D01", **changes})
    return Envelope.wrap("identity", user, subject=CLERK, center_id=None).model_copy(update={"sequence": sequence})


async def apply(client, *envelopes: Envelope) -> None:
    (spec,) = [spec for spec in CONSUMERS if spec.name == "staff"]
    assert spec.topics == (topic_for("identity").name,)
    async with client.app.state.sessionmaker() as session, session.begin():  # one transaction per event, as the
        for envelope in envelopes:  # consumer runs them (here: all in one, which is the same for this handler)
            await spec.handlers["user.upserted"](session, envelope)


async def sign_in_shows(client, tokens) -> dict:
    """The clerk signs in at window 1, and out again; what the sign-in event said of them."""
    headers = tokens.headers("clerk", [A], department="D01", window="1", subject=CLERK, device="term-1")
    for action in ("sign-in", "sign-out"):
        r = await client.post(f"/centers/{A}/windows/1/{action}", headers=headers)
        assert r.status_code == 200, r.text
    return [e for e in await outbox(client) if e["type"] == "window.signed_in"][-1]["data"]["clerk"]


async def test_the_newest_user_event_wins_and_the_sign_in_shows_it(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A")
        await window(client, tokens, "1", {"HJ": 1}, a_clerk=CLERK)
        await apply(client, user_event(5, display_name="李四", photo_url=PHOTO + "5"))
        first = await sign_in_shows(client, tokens)
        await apply(client, user_event(3, display_name="旧名字"), user_event(5, display_name="重发"))  # older; repeat
        unchanged = await sign_in_shows(client, tokens)
        await apply(client, user_event(9, display_name="李四", post_title="首席代表", photo_url=PHOTO + "9" * 400))
        newer = await sign_in_shows(client, tokens)
        (row,) = await client.db.fetch("SELECT * FROM staff")
    assert first == {"id": CLERK, "display_name": "李四", "post_title": "综合受理岗", "photo_url": PHOTO + "5"}
    assert unchanged == first
    assert newer == {"id": CLERK, "display_name": "李四", "post_title": "首席代表", "photo_url": PHOTO + "9" * 400}
    assert (row["last_event_sequence"], row["role"], list(row["centers"]), row["department"]) == (9, "clerk", [A],
                                                                                                 "D01")


async def test_a_deactivated_user_is_kept_inactive_and_contacts_are_not_copied(service_client):
    async with service_client("queue") as client:
        await apply(client, user_event(1, phone_masked="138****5678", phone_sealed="c2VhbGVk"),
                    user_event(2, active=False))
        (row,) = await client.db.fetch("SELECT * FROM staff")
    assert row["active"] is False
    assert "138****5678" not in str(dict(row)) and "c2VhbGVk" not in str(dict(row))
