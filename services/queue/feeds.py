"""The queue service's live feed (hall display, 综合屏): its topic as server-sent events, per centre, and only
what a hall screen may show: calls and recalls with their announcement, who is at which window (岗位公示),
who stepped away with which message (去向留言) and which window is closed why, the waiting counts, the centre's
name, and the scrolling area (notices, time limits and fees, the complaint phone). Never an issued ticket, a
turn-near notice, an appointment or an evaluation: those name people, and a display is a screen anyone in the
hall can read."""

from typing import Annotated

from fastapi import Query, Request

from shared.auth import CurrentFeedUser, Principal, Role
from shared.errors import Forbidden
from shared.events.envelope import Envelope
from shared.feeds import Feed, by_query
from shared.settings import ServiceSettings

DISPLAY_ROLES = {Role.DISPLAY, Role.HALL_MANAGER, Role.CLERK, Role.SUPERVISOR, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN}
DISPLAY_EVENTS = frozenset({"ticket.called", "ticket.recalled", "window.signed_in", "window.signed_out",
                            "window.upserted", "window.away", "window.back", "window.closed",
                            "queue.waiting_counts", "center.upserted", "center.notices_changed"})


async def display_viewer(request: Request, user: CurrentFeedUser,
                         center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")]) -> Principal:
    """A display device or staff member of the centres the stream is filtered to (`?center=` is required)."""
    if user.role not in DISPLAY_ROLES:
        raise Forbidden(f"role {user.role} may not watch the hall display feed", code="wrong_role")
    # `center` makes ?center= required and documents it, but binds one value only; the feed filters on
    # every ?center= given (shared.feeds.by_query), so each must be the caller's
    for each in request.query_params.getlist("center"):
        user.check_center(each)
    return user


def display_filter(request: Request, envelope: Envelope) -> bool:
    """The allow-list first (whatever `?type=` asks for), then the centre and type filters of the query."""
    return envelope.type in DISPLAY_EVENTS and by_query(request, envelope)


def display_feed(settings: ServiceSettings) -> Feed:
    return Feed(settings.hall.kafka_bootstrap, "hall.queue.v1", name="queue-display")
