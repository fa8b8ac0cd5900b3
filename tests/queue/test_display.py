"""The hall display: its feed lets through only what a public screen may show, and its board gives the
current calls, the windows' signs, the waiting counts and the event id the feed goes on from."""

from __future__ import annotations

import types
import typing

import pydantic
from starlette.requests import Request

from services.queue.feeds import DISPLAY_EVENTS, display_filter
from shared.events import catalog  # noqa: F401 - registers every event model
from shared.events.envelope import Envelope, registry
from tests.queue.builders import A, outbox
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import hall, issue

PERSONAL = ("phone", "id_number", "email", "id_card")


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/feeds/display", "query_string": query.encode(),
                    "headers": []})


def _fields(model: type[pydantic.BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every field name of a model, nested models included."""
    seen = seen or set()
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        stack = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel) and annotation not in seen:
                seen.add(annotation)
                names |= _fields(annotation, seen)
            stack.extend(typing.get_args(annotation) if not isinstance(annotation, types.NoneType) else ())
    return names


def test_a_display_gets_calls_windows_and_counts_and_nothing_that_names_a_person():
    request = _request(f"center={A}&type=ticket.*&type=appointment.*")  # whatever it asks for
    passed = set()
    for (event_type, _version), model in registry.items():
        envelope = Envelope(type=event_type, occurred_at="2026-02-12T01:00:00Z", producer="queue", center_id=A,
                            subject="x", sequence=1, data={})
        if display_filter(request, envelope) or display_filter(_request(f"center={A}"), envelope):
            passed.add(event_type)
            personal = [f for f in _fields(model) if any(p in f for p in PERSONAL)]
            assert not personal, f"{event_type} carries {personal} to a public screen"
    assert passed == DISPLAY_EVENTS
    assert not {"ticket.issued", "appointment.booked", "appointment.checked_in"} & passed
    assert "evaluation.submitted" not in passed


def test_a_display_gets_only_its_centres_events():
    envelope = Envelope(type="ticket.called", occurred_at="2026-02-12T01:00:00Z", producer="queue",
                        center_id="320104", subject="x", sequence=1, data={})
    assert not display_filter(_request(f"center={A}"), envelope)


async def test_the_board_shows_each_windows_sign_and_call_and_where_the_feed_goes_on(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens, {"1": {"HJ": 1}, "2": {"SB": 1}})
        clerk = await signed_in(client, tokens, "1", "u-1")
        first = await issue(client, tokens)
        await issue(client, tokens)
        await issue(client, tokens, "SB")
        await call(client, clerk)
        await client.post(f"/tickets/{first['id']}/recall", headers=clerk)
        board = await client.get(f"/centers/{A}/display", headers=tokens.headers("display", [A]))
        kiosk = await client.get(f"/centers/{A}/display", headers=tokens.headers("kiosk", [A]))
        events = await outbox(client)
        last = (await client.db.fetch("SELECT max(sequence) AS s FROM outbox"))[0]["s"]
    assert board.status_code == 200, board.text
    body = board.json()
    assert body["last_event_id"] == last and last == len(events)
    one, two = body["windows"]
    assert (one["number"], one["state"], one["post"], one["clerk"]["id"]) == ("1", "open", "A", "u-1")
    assert one["current"] == {"number": "A001", "window": "1", "called_at": one["current"]["called_at"],
                              "recalls": 1, "announcement": "请A001号到1号窗口办理"}
    assert two["state"] == "signed_out" and two["clerk"] is None and two["current"] is None
    assert body["waiting"] == {"HJ": 1, "SB": 1}
    assert [c["number"] for c in body["recent_calls"]] == ["A001"]
    assert kiosk.status_code == 403
