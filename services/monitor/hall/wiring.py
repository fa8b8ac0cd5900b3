"""What supervision II (hall) adds to the monitor's worker: event handlers (queue topic, cases topic), timer
handlers and periodic jobs. The queue's events keep the hall's read model (services, windows, tickets,
appointment requests) and arm the hall's timers; the cases' inquiry events keep the inquiries."""

from services.monitor.hall import rules
from shared.events.consumer import Handler
from shared.timers import PeriodicJob, TimerHandler

QUEUE_HANDLERS: dict[str, Handler] = {
    "service.upserted": rules.copy_service,
    "window.upserted": rules.copy_window,
    **{event_type: rules.apply_window_event for event_type in rules.STATE_EVENTS},
    **{event_type: rules.apply_ticket_event for event_type in rules.TICKET_EVENTS},
    "appointment.requested": rules.apply_request_event,
    "appointment.confirmed": rules.apply_request_event,
    "appointment.declined": rules.apply_request_event,
}
CASES_HANDLERS: dict[str, Handler] = {
    "inquiry.registered": rules.apply_inquiry_event,
    "inquiry.answered": rules.apply_inquiry_event,
}
TIMER_HANDLERS: dict[str, TimerHandler] = {
    rules.VACANCY: rules.on_vacancy,
    rules.WAIT: rules.on_wait,
    rules.REQUEST: rules.on_request,
    rules.INQUIRY: rules.on_inquiry,
}
JOBS: list[PeriodicJob] = []
