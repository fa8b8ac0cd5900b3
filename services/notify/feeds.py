"""`/feeds/{feed}`: notify's live feeds, members only, resumable with Last-Event-ID (shared.feeds).

A message posted to a feed is a `delivery.feed_posted` event on notify's topic whose envelope names the feed
as its `subject` (and its centre as `center_id`): a stream admits exactly those of the feed it was opened for.
The feeds and their members:

- `department:<centre>:<code>`: the department's clerks and chief representative (their token's `department`
  claim) of that centre; the centre's supervisors, hall managers and admins; the system admin;
- `supervision:<centre>`: the supervision office (监察室): the centre's supervisors and admins; the system admin;
- `window:<centre>:<number>`: the clerk signed in at that window and the window's terminal (their token's
  `window` claim) of that centre; the centre's hall managers and supervisors; the system admin.

The token may come as `?access_token=` (a browser's EventSource sends no headers). After a `feed.gap` a screen
reloads what it shows from `GET /deliveries?channel=feed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Request
from starlette.responses import StreamingResponse

from shared.auth import CurrentFeedUser, Principal, Role
from shared.errors import AppError, Forbidden
from shared.events.envelope import Envelope
from shared.feeds import EventFilter, Feed
from shared.settings import ServiceSettings

TOPIC = "hall.notify.v1"
FEED_POSTED = "delivery.feed_posted"
_CENTRE = r"[A-Za-z0-9]{2,32}"
FEED_NAME = re.compile(
    rf"^(?:(?P<department>department):(?P<d_center>{_CENTRE}):(?P<code>[A-Za-z0-9_.-]{{1,32}})"
    rf"|(?P<supervision>supervision):(?P<s_center>{_CENTRE})"
    rf"|(?P<window>window):(?P<w_center>{_CENTRE}):(?P<number>[A-Za-z0-9-]{{1,16}}))$")

CENTRE_STAFF: dict[str, frozenset[Role]] = {
    "department": frozenset({Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN}),
    "supervision": frozenset({Role.SUPERVISOR, Role.CENTER_ADMIN}),
    "window": frozenset({Role.HALL_MANAGER, Role.SUPERVISOR}),
}
"""Who watches a feed for the whole centre, by the feed's kind (the system admin watches every feed)."""
DEPARTMENT_STAFF = frozenset({Role.CLERK, Role.CHIEF_REP})
WINDOW_STAFF = frozenset({Role.CLERK, Role.TERMINAL})


class BadFeedName(AppError):
    status, code = 422, "validation_failed"


@dataclass(frozen=True)
class FeedName:
    name: str
    kind: Literal["department", "supervision", "window"]
    center_id: str
    department: str | None = None
    window: str | None = None


def parse_feed(name: str) -> FeedName:
    """A feed's name as the planner posts to it; BadFeedName (422, field `feed`) for anything else."""
    m = FEED_NAME.match(name)
    if m is None:
        raise BadFeedName("feed: must be department:<centre>:<code>, supervision:<centre> or "
                          "window:<centre>:<number>", field="feed")
    if m["department"]:
        return FeedName(name, "department", m["d_center"], department=m["code"])
    if m["supervision"]:
        return FeedName(name, "supervision", m["s_center"])
    return FeedName(name, "window", m["w_center"], window=m["number"])


def check_member(user: Principal, feed: FeedName) -> None:
    """Forbidden (403) unless the caller is a member of the feed (see the module docstring)."""
    if user.role == Role.SYSTEM_ADMIN:
        return
    if user.role in CENTRE_STAFF[feed.kind]:
        user.check_center(feed.center_id)
        return
    if feed.kind == "department" and user.role in DEPARTMENT_STAFF:
        user.check_center(feed.center_id)
        if user.department != feed.department:
            raise Forbidden(f"only the department's own staff watch {feed.name}", field="feed",
                            code="wrong_department")
        return
    if feed.kind == "window" and user.role in WINDOW_STAFF:
        user.check_center(feed.center_id)
        if user.window != feed.window:
            raise Forbidden(f"only the clerk and terminal of that window watch {feed.name}", field="feed",
                            code="wrong_window")
        return
    raise Forbidden(f"role {user.role} is no member of the {feed.kind} feed", field="feed", code="wrong_role")


def only(feed: FeedName) -> EventFilter:
    """The stream's filter: the messages posted to that feed, from the envelope's header alone."""

    def admits(request: Request, envelope: Envelope) -> bool:
        return envelope.type == FEED_POSTED and envelope.subject == feed.name

    return admits


def notify_feed(settings: ServiceSettings) -> Feed:
    return Feed(settings.hall.kafka_bootstrap, TOPIC, name="notify")


def feeds_router(source: Feed) -> APIRouter:
    """GET /feeds/{feed} streaming `source` to the feed's members."""
    router = APIRouter(tags=["feeds"])

    @router.get("/feeds/{feed}", response_class=StreamingResponse, name="feed:notify",
                responses={200: {"content": {"text/event-stream": {}}}})
    async def watch_feed(request: Request, user: CurrentFeedUser,
                         feed: Annotated[str, Path(max_length=120, examples=["window:320102:3"])],
                         last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None
                         ) -> StreamingResponse:
        """A feed's messages as server-sent events, members only; reconnect with Last-Event-ID to resume."""
        name = parse_feed(feed)
        check_member(user, name)
        for centre in request.query_params.getlist("center"):  # the filter reads none; none is another's
            user.check_center(centre)
        return await source.stream(request, only(name))

    return router
