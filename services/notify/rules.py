"""The default notifications (DOMAIN.md "Notifications"; issue 25 item 2): which event tells whom, on which
channel, through which template. Each rule is one template key; each can be switched off per centre.

Audiences:
- applicant: the phone sealed in the event, or for later case events the one case.accepted carried;
- complainant: the complaint's sealed contact (SMS, or e-mail when its masked form is an address);
- handler: the case's handler (a staff contact from user.upserted), by e-mail and SMS where they have one;
- window: the feed `window:<centre>:<number>` of the window the alert names;
- department: the department's head (department.upserted), by e-mail and SMS, and its feed
  `department:<centre>:<code>`;
- supervision: the office's feed `supervision:<centre>` (its mailbox is an extra address subscribed to the
  event types it wants, see services.notify.recipients);
- hall_manager: the centre's hall managers (staff contacts with that role).

Subscriptions (an admin's) add recipients for any event type; they use the rule template of that event and
channel where there is one, else `generic_<channel>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events.envelope import EventData

Audience = Literal["applicant", "complainant", "handler", "window", "department", "supervision", "hall_manager"]
ChannelName = Literal["sms", "email", "webhook", "feed"]


@dataclass(frozen=True)
class Rule:
    key: str  # the template key
    event_type: str
    audience: Audience
    channel: ChannelName
    title: str  # what the rule is, in Chinese, for the admin's list
    when: Callable[[Any], bool] | None = None  # on the event's payload model
    extras: dict[str, type] = field(default_factory=dict)  # template variables beyond the payload's fields

    def applies(self, payload: EventData) -> bool:
        return self.when is None or bool(self.when(payload))


def _alert_kind(*kinds: str) -> Callable[[Any], bool]:
    return lambda p: p.alert.kind in kinds


def _email_contact(p: Any) -> bool:
    return "@" in (p.complaint.contact_masked or "")


def _phone_contact(p: Any) -> bool:
    return p.complaint.contact_sealed is not None and not _email_contact(p)


def _has_email_contact(p: Any) -> bool:
    return p.complaint.contact_sealed is not None and _email_contact(p)


COMMON_EXTRAS: dict[str, type] = {"center_name": str, "recipient_name": str}
"""Every template may also use: the centre's name and the recipient's name (empty for an applicant)."""

REMINDER_EVENT = "appointment.reminder"
"""Not an event of the catalog: the reminder the day before an appointment is planned by notify's own timer,
and its template sees the appointment.booked payload."""

RULES: tuple[Rule, ...] = (
    # applicants (办事群众)
    Rule("case_accepted_sms", "case.accepted", "applicant", "sms", "受理通知（含查询码）",
         extras={"lookup_code": str}),
    Rule("case_supplement_sms", "case.paused", "applicant", "sms", "补正通知（一次性告知全部材料）",
         when=lambda p: p.pause_kind == "supplement"),
    Rule("notice_issued_sms", "notice.issued", "applicant", "sms", "一次性告知书"),
    Rule("case_extended_sms", "case.extended", "applicant", "sms", "延期通知"),
    Rule("case_completed_sms", "case.completed", "applicant", "sms", "办结通知（可领取）",
         when=lambda p: p.result == "approved"),
    Rule("case_refused_sms", "case.refused", "applicant", "sms", "不予办理通知"),
    Rule("appointment_booked_sms", "appointment.booked", "applicant", "sms", "预约成功",
         when=lambda p: p.appointment.channel != "staff"),
    Rule("appointment_confirmed_sms", "appointment.confirmed", "applicant", "sms", "预约申请已确认（时间、地点、材料）"),
    Rule("appointment_declined_sms", "appointment.declined", "applicant", "sms", "预约申请未能安排（原因）"),
    Rule("appointment_reminder_sms", REMINDER_EVENT, "applicant", "sms", "预约前一天提醒"),
    Rule("ticket_turn_near_sms", "ticket.turn_near", "applicant", "sms", "即将叫号提醒"),
    Rule("complaint_acknowledged_sms", "complaint.acknowledged", "complainant", "sms", "投诉受理回执（短信）",
         when=_phone_contact),
    Rule("complaint_acknowledged_email", "complaint.acknowledged", "complainant", "email", "投诉受理回执（邮件）",
         when=_has_email_contact),
    Rule("complaint_resolved_sms", "complaint.resolved", "complainant", "sms", "投诉处理结果（短信）",
         when=_phone_contact),
    Rule("complaint_resolved_email", "complaint.resolved", "complainant", "email", "投诉处理结果（邮件）",
         when=_has_email_contact),
    # handlers and windows (承办人、窗口)
    Rule("alert_early_warning_email", "alert.raised", "handler", "email", "预警：承办人（邮件）",
         when=_alert_kind("early_warning")),
    Rule("alert_early_warning_sms", "alert.raised", "handler", "sms", "预警：承办人（短信）",
         when=_alert_kind("early_warning")),
    Rule("alert_early_warning_window", "alert.raised", "window", "feed", "预警：窗口消息",
         when=_alert_kind("early_warning")),
    Rule("alert_overdue_email", "alert.raised", "handler", "email", "超时：承办人（邮件）",
         when=_alert_kind("overdue")),
    Rule("alert_overdue_sms", "alert.raised", "handler", "sms", "超时：承办人（短信）",
         when=_alert_kind("overdue")),
    Rule("alert_overdue_window", "alert.raised", "window", "feed", "超时：窗口消息",
         when=_alert_kind("overdue")),
    # department heads and the supervision office (窗口单位负责人、监察室)
    Rule("sanction_issued_email", "sanction.issued", "department", "email", "警告／通报批评：部门负责人（邮件）"),
    Rule("sanction_issued_sms", "sanction.issued", "department", "sms", "警告／通报批评：部门负责人（短信）"),
    Rule("sanction_issued_department", "sanction.issued", "department", "feed", "警告／通报批评：部门消息"),
    Rule("sanction_issued_supervision", "sanction.issued", "supervision", "feed", "警告／通报批评：监察室消息"),
    Rule("sanction_reclassified_email", "sanction.reclassified", "department", "email", "更正通知：部门负责人（邮件）"),
    Rule("sanction_reclassified_sms", "sanction.reclassified", "department", "sms", "更正通知：部门负责人（短信）"),
    Rule("sanction_reclassified_department", "sanction.reclassified", "department", "feed", "更正通知：部门消息"),
    Rule("sanction_reclassified_supervision", "sanction.reclassified", "supervision", "feed", "更正通知：监察室消息"),
    # the hall manager (大厅管理员)
    Rule("alert_vacant_window_sms", "alert.raised", "hall_manager", "sms", "窗口空岗：大厅管理员（短信）",
         when=_alert_kind("vacant_window")),
    Rule("alert_vacant_window_email", "alert.raised", "hall_manager", "email", "窗口空岗：大厅管理员（邮件）",
         when=_alert_kind("vacant_window")),
    Rule("alert_long_wait_sms", "alert.raised", "hall_manager", "sms", "等候超时：大厅管理员（短信）",
         when=_alert_kind("long_wait")),
    Rule("alert_long_wait_email", "alert.raised", "hall_manager", "email", "等候超时：大厅管理员（邮件）",
         when=_alert_kind("long_wait")),
)

GENERIC_KEYS: dict[str, ChannelName] = {"generic_sms": "sms", "generic_email": "email", "generic_feed": "feed"}
"""Templates for a subscription to an event type no rule of that channel covers; they see the envelope:
`event_type`, `occurred_at`, `center_id` and `data` (the payload as a mapping)."""

BY_KEY: dict[str, Rule] = {rule.key: rule for rule in RULES}
BY_EVENT: dict[str, tuple[Rule, ...]] = {}
for _rule in RULES:
    BY_EVENT[_rule.event_type] = (*BY_EVENT.get(_rule.event_type, ()), _rule)

NOTIFYING_EVENTS: frozenset[str] = frozenset(BY_EVENT) - {REMINDER_EVENT}
