"""The Chinese default of every template (services.notify.rules): (subject or None for SMS and feeds, body).

Worded as a hall words its notices (承诺件告知单, 一次性告知, 延期告知, 不予办理通知书); an SMS carries no 【signature】:
the provider adds the one registered for the hall. Filters: services.notify.templating.env."""

from __future__ import annotations

_OUTCOME = ('{% if outcome == "upheld" %}经核实，您反映的问题属实，我们已责成相关窗口（部门）整改。'
            '{% elif outcome == "dismissed" %}经核实，您反映的问题不属实。'
            '{% else %}您反映的问题已处理。{% endif %}')

_SANCTION_SUMMARY = ("{{ sanction.department_name or sanction.department }}：你单位被予以{{ sanction.level|cn }}"
                     "（文号{{ sanction.notice_no }}）"
                     "{% if sanction.case_no %}，涉及办件{{ sanction.case_no }}"
                     "{% if sanction.item_name %}（{{ sanction.item_name }}）{% endif %}{% endif %}。"
                     "请于{{ sanction.rectification_due_at|local_date }}前完成整改并书面报送督查股。")

_GREETING = "{{ recipient_name ~ '：' if recipient_name else '您好：' }}\n\n"
_SIGNATURE = "\n\n{{ center_name }}"

DEFAULTS: dict[str, tuple[str | None, str]] = {
    # --- applicants (办事群众) -----------------------------------------------------------------------------
    "case_accepted_sms": (None, (
        "您在{{ center_name }}申请的“{{ case.item.name }}”已于{{ case.accepted_at|local_time }}受理，"
        "受理编号{{ case.case_no }}，查询码{{ lookup_code }}，承诺于{{ case.due_at|local_date }}前办结。"
        "凭受理编号和查询码可查询办理进度，请妥善保管。")),
    "case_supplement_sms": (None, (
        "您申请的“{{ case.item.name }}”（受理编号{{ case.case_no }}）需补正材料，现一次性告知需补齐的全部材料：\n"
        "{{ missing_materials|numbered }}\n"
        "{% if reason %}说明：{{ reason|clause }}。\n{% endif %}"
        "请补齐后到{{ center_name }}{% if case.window %}{{ case.window }}号窗口{% else %}原受理窗口{% endif %}提交，"
        "补正期间办理时限暂停计算。")),
    "notice_issued_sms": (None, (
        "您咨询办理的“{{ item.name }}”尚缺以下材料，现一次性告知（告知书编号{{ notice_no }}）：\n"
        "{{ missing|numbered }}\n"
        "请备齐后到{{ center_name }}{% if window %}{{ window }}号窗口{% endif %}办理，"
        "受理时出示告知书编号即可。")),
    "case_extended_sms": (None, (
        "您申请的“{{ case.item.name }}”（受理编号{{ case.case_no }}）因{{ reason|clause }}，"
        "经批准延期{{ days }}个工作日办结，新的办结期限为{{ case.due_at|local_date }}。给您带来不便，敬请谅解。")),
    "case_completed_sms": (None, (
        "您申请的“{{ case.item.name }}”（受理编号{{ case.case_no }}）已于{{ completed_at|local_time }}办结，"
        "请携带受理回执和本人身份证件到{{ center_name }}"
        "{% if case.window %}{{ case.window }}号窗口{% else %}受理窗口{% endif %}领取办理结果。")),
    "case_refused_sms": (None, (
        "您申请的“{{ case.item.name }}”（受理编号{{ case.case_no }}）经审查不予办理。"
        "理由：{{ reason|clause }}。依据：{{ legal_basis|clause }}。"
        "《不予办理通知书》可到{{ center_name }}受理窗口领取；如有异议，可依法申请行政复议或提起行政诉讼。")),
    "appointment_booked_sms": (None, (
        "您已预约{{ center_name }}{{ appointment.slot_start|local_date }}（{{ appointment.slot_start|weekday }}）"
        "{{ appointment.slot_start|clock }}办理业务，预约码{{ appointment.code }}。"
        "请在预约时间前60分钟至后20分钟内凭预约码签到取号，逾时按现场取号办理。")),
    "appointment_confirmed_sms": (None, (
        "您的预约申请已确认：办理时间{{ slot_start|local_date }}（{{ slot_start|weekday }}）{{ slot_start|clock }}，"
        "地点{{ place }}，预约码{{ appointment_code }}。"
        "{% if materials %}请携带：{{ materials|cn_list }}。{% endif %}"
        "请按时凭预约码签到取号。")),
    "appointment_declined_sms": (None, (
        "很抱歉，您{{ request.requested_at|local_date }}提出的预约申请未能安排，原因：{{ reason|clause }}。"
        "如有疑问，请咨询{{ center_name }}。")),
    "appointment_reminder_sms": (None, (
        "温馨提醒：您预约了{{ appointment.slot_start|local_date }}（{{ appointment.slot_start|weekday }}）"
        "{{ appointment.slot_start|clock }}到{{ center_name }}办理业务，预约码{{ appointment.code }}。"
        "请携带本人身份证件和所需材料按时到场签到取号。")),
    "ticket_turn_near_sms": (None, (
        "您在{{ center_name }}取的{{ ticket.number }}号即将叫号，前面还有{{ people_ahead }}人，"
        "预计等候{{ estimated_wait_s|duration }}。请回到等候区留意叫号屏，过号将顺延。")),
    "complaint_acknowledged_sms": (None, "{{ text }}"),
    "complaint_acknowledged_email": ("投诉受理回执（编号{{ complaint.number }}）", (
        _GREETING
        + "{{ text }}\n\n"
        "投诉编号：{{ complaint.number }}\n"
        "收到时间：{{ complaint.received_at|local_time }}\n"
        "答复期限：{{ complaint.due_at|local_time }}前\n\n"
        "感谢您对我们工作的监督。"
        + _SIGNATURE)),
    "complaint_resolved_sms": (None, (
        "您的投诉（编号{{ complaint.number }}）已办结。" + _OUTCOME + "{{ text }}")),
    "complaint_resolved_email": ("投诉处理结果（编号{{ complaint.number }}）", (
        _GREETING
        + "您{{ complaint.received_at|local_date }}的投诉（编号{{ complaint.number }}）已办结。\n\n"
        + _OUTCOME + "\n{{ text }}\n\n"
        "如对处理结果不满意，可再次向{{ center_name }}反映。"
        + _SIGNATURE)),
    # --- handlers and windows (承办人、窗口) ------------------------------------------------------------------
    "alert_early_warning_email": ("办件预警：{{ alert.case_no or '' }}{% if alert.item_name %}（{{ alert.item_name }}）{% endif %}", (
        _GREETING
        + "{{ alert.text }}\n\n"
        "{% if alert.case_no %}办件编号：{{ alert.case_no }}\n{% endif %}"
        "{% if alert.item_name %}办理事项：{{ alert.item_name }}\n{% endif %}"
        "{% if alert.due_at %}承诺办结期限：{{ alert.due_at|local_time }}\n{% endif %}"
        "\n\n请在期限内办结；确需延期的，请及时向首席代表申请。"
        + _SIGNATURE + "电子监察")),
    "alert_early_warning_sms": (None, (
        "{{ alert.text }}{% if alert.due_at %}期限{{ alert.due_at|local_time }}。{% endif %}"
        "请在期限内办结，确需延期的请及时申请。")),
    "alert_early_warning_window": (None, "{{ alert.text }}"),
    "alert_overdue_email": ("办件超时：{{ alert.case_no or '' }}{% if alert.item_name %}（{{ alert.item_name }}）{% endif %}", (
        _GREETING
        + "{{ alert.text }}\n\n"
        "{% if alert.case_no %}办件编号：{{ alert.case_no }}\n{% endif %}"
        "{% if alert.item_name %}办理事项：{{ alert.item_name }}\n{% endif %}"
        "{% if alert.due_at %}承诺办结期限：{{ alert.due_at|local_time }}\n{% endif %}"
        "{% if alert.overdue_days %}已超时：{{ alert.overdue_days }}个工作日\n{% endif %}"
        "\n\n请立即办结，并向首席代表说明超时原因。超时办件经查实的，按规定予以警告、通报批评。"
        + _SIGNATURE + "电子监察")),
    "alert_overdue_sms": (None, "{{ alert.text }}请立即办结并说明原因。"),
    "alert_overdue_window": (None, "{{ alert.text }}"),
    # --- department heads and the supervision office (窗口单位负责人、监察室) --------------------------------
    "sanction_issued_email": (
        "{{ sanction.level|cn }}通知：{{ sanction.department_name or sanction.department }}（{{ sanction.notice_no }}）",
        "{{ sanction.notice_text }}"),
    "sanction_issued_sms": (None, _SANCTION_SUMMARY + "通知全文已发至你单位邮箱。"),
    "sanction_issued_department": (None, "{{ sanction.notice_text }}"),
    "sanction_issued_supervision": (None, "{{ sanction.notice_text }}"),
    "sanction_reclassified_email": (
        "更正通知：{{ sanction.department_name or sanction.department }}（{{ sanction.notice_no }}）", (
            "文号{{ sanction.notice_no }}的通知更正如下：原{{ previous_level|cn }}更正为{{ sanction.level|cn }}，"
            "原因：{{ reason|clause }}。原通知作废，以本通知为准。\n\n"
            "{{ sanction.notice_text }}")),
    "sanction_reclassified_sms": (None, (
        "更正：文号{{ sanction.notice_no }}的通知由{{ previous_level|cn }}更正为{{ sanction.level|cn }}"
        "（{{ reason|clause }}），原通知作废。" + _SANCTION_SUMMARY)),
    "sanction_reclassified_department": (None, (
        "更正通知：原{{ previous_level|cn }}更正为{{ sanction.level|cn }}（{{ reason|clause }}），原通知作废。\n"
        "{{ sanction.notice_text }}")),
    "sanction_reclassified_supervision": (None, (
        "更正通知：{{ sanction.department_name or sanction.department }}文号{{ sanction.notice_no }}的通知"
        "由{{ previous_level|cn }}更正为{{ sanction.level|cn }}（{{ reason|clause }}）。\n"
        "{{ sanction.notice_text }}")),
    # --- the hall manager (大厅管理员) ---------------------------------------------------------------------
    "alert_vacant_window_sms": (None, "{{ alert.text }}请尽快安排人员到岗。"),
    "alert_vacant_window_email": ("窗口空岗：{% if alert.window %}{{ alert.window }}号窗口{% endif %}", (
        _GREETING
        + "{{ alert.text }}\n\n"
        "发现时间：{{ alert.raised_at|local_time }}\n"
        "\n请尽快安排人员到岗，或安排B岗顶岗。"
        + _SIGNATURE + "电子监察")),
    "alert_long_wait_sms": (None, "{{ alert.text }}请尽快疏导，必要时增开窗口。"),
    "alert_long_wait_email": ("等候超时{% if alert.window %}：{{ alert.window }}号窗口{% endif %}", (
        _GREETING
        + "{{ alert.text }}\n\n"
        "发现时间：{{ alert.raised_at|local_time }}\n"
        "\n请尽快疏导等候群众，必要时增开窗口或调配人员。"
        + _SIGNATURE + "电子监察")),
    # --- subscriptions to events no rule covers (订阅) ----------------------------------------------------
    "generic_sms": (None, "{{ center_name }}事件通知：{{ event_type }}，{{ occurred_at|local_time }}。"),
    "generic_email": ("{{ center_name }}事件通知：{{ event_type }}", (
        _GREETING
        + "事件：{{ event_type }}\n"
        "时间：{{ occurred_at|local_time }}\n"
        "{% if center_id %}中心：{{ center_name or center_id }}\n{% endif %}"
        "\n\n{% for name, value in data|dictsort %}{{ name }}：{{ value|plain }}\n{% endfor %}"
        + _SIGNATURE)),
    "generic_feed": (None, "{{ event_type }}（{{ occurred_at|local_time }}）"),
}
