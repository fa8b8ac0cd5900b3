"""The supervision office's live feed (`/feeds/alerts?center=`): the monitor's alerts, findings and sanctions
of the centres asked for, and the system's alerts (a calendar year missing), resumable with Last-Event-ID.
After a `feed.gap` a board reloads with `GET /alerts?since=`. A hall manager watches alerts only."""

from typing import Annotated

from fastapi import Query, Request

from shared.auth import CurrentFeedUser, Principal, Role
from shared.errors import Forbidden
from shared.events.envelope import Envelope
from shared.feeds import Feed
from shared.settings import ServiceSettings

FEED_ROLES = {Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN}
OFFICE_PREFIXES = ("alert.", "finding.", "sanction.")


async def alerts_viewer(request: Request, user: CurrentFeedUser,
                        center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")]) -> Principal:
    """A supervisor, hall manager or admin of every centre the stream is filtered to (`?center=` required)."""
    if user.role not in FEED_ROLES:
        raise Forbidden(f"role {user.role} may not watch the supervision feed", code="wrong_role")
    for each in request.query_params.getlist("center"):
        user.check_center(each)
    return user


def alerts_filter(request: Request, envelope: Envelope) -> bool:
    principal: Principal | None = getattr(request.state, "principal", None)
    prefixes = ("alert.",) if principal is not None and principal.role == Role.HALL_MANAGER else OFFICE_PREFIXES
    if not envelope.type.startswith(prefixes):
        return False
    if envelope.center_id is not None and envelope.center_id not in request.query_params.getlist("center"):
        return False
    types = request.query_params.getlist("type")
    return not types or any(envelope.type == t or (t.endswith(".*") and envelope.type.startswith(t[:-1]))
                            for t in types)


def alerts_feed(settings: ServiceSettings) -> Feed:
    return Feed(settings.hall.kafka_bootstrap, "hall.monitor.v1", name="monitor-alerts")
