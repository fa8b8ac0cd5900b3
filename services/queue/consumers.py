"""Event type -> handler of the queue service's consumers: its copy of the calendar (for opening days)."""

from shared.calendar.store import calendar_consumer
from shared.events.consumer import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = [calendar_consumer()]
