"""Event type -> handler of the queue service's consumers: its copy of the calendar (for opening days) and
of identity's staff (the names, post titles and photos a window's public sign shows: 岗位公示)."""

from services.queue.models import Staff
from shared.calendar.store import calendar_consumer
from shared.events.consumer import ConsumerSpec
from shared.readcopy import staff_consumer

CONSUMERS: list[ConsumerSpec] = [calendar_consumer(), staff_consumer(Staff)]
