"""The cases' written notices as documents of shared.documents (pure: what is printed, from rows already loaded).

承诺件告知单 (receipt), 补正告知书 (supplement), 延期告知书 (extension), 不予办理通知书 (refusal), 代办承办单
(agency), 一次性告知书 (the notice of a numbered one-time notice) and the printable 办事指南 (guide). The ID
number is printed masked, never in clear; the applicant's name is printed as the applicant gave it (the notice
is handed to them: the encrypted form's authorised use), the phone masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from services.cases.catalogue.schemas import PublicItemOut
from services.cases.models import Case, CasePause
from services.cases.registers.models import CaseAgency, Notice
from shared import clock
from shared.documents import (
    Block,
    Column,
    Document,
    Field,
    Fields,
    Heading,
    Paragraph,
    QRCode,
    Signature,
    Table,
    chinese_date,
)

KIND_NAMES = {"immediate": "即办件", "promised": "承诺件", "joint": "联办件", "reported": "上报件"}
SERVICE_OBJECTS = {"natural_person": "自然人", "enterprise": "企业法人", "public_institution": "事业单位法人",
                   "social_organization": "社会组织法人", "unincorporated_enterprise": "非法人企业",
                   "government_agency": "行政机关", "other_organization": "其他组织"}


@dataclass(frozen=True)
class Letterhead:
    """Who issues the notice: the centre and the department, the centre's enquiry phone, the public address."""

    center_id: str
    center_name: str
    department_name: str
    phone: str | None
    public_base_url: str


@dataclass(frozen=True)
class Applicant:
    name: str
    id_number_masked: str
    phone_masked: str | None
    org: str | None = None


def local_time(at: datetime) -> str:
    """`2026-02-12T01:00Z` -> `2026年02月12日 09:00` (Asia/Shanghai)."""
    local = at.astimezone(clock.LOCAL_TZ)
    return f"{chinese_date(local.date())} {local:%H:%M}"


def due_text(at: datetime) -> str:
    """A limit's end as printed: the local date (the limit runs to its 23:59:59)."""
    return f"{chinese_date(clock.local_date(at))}（当日24时前）"


def lookup_url(base: str, case_no: str, code: str | None) -> str:
    query = {"no": case_no, **({"code": code} if code else {})}
    return f"{base.rstrip('/')}/ui/case?{urlencode(query)}"


def guide_url(base: str, center_id: str, code: str) -> str:
    return f"{base.rstrip('/')}/ui/guide?{urlencode({'center': center_id, 'code': code})}"


def _applicant_fields(applicant: Applicant) -> list[Field]:
    fields = [Field("申请人", applicant.name)]
    if applicant.org:
        fields.append(Field("申请单位", applicant.org))
    fields.append(Field("身份证号", applicant.id_number_masked))
    if applicant.phone_masked:
        fields.append(Field("联系电话", applicant.phone_masked))
    return fields


def _case_fields(case: Case) -> list[Field]:
    return [Field("办理事项", f"{case.item_name}（{case.item_code}）"),
            Field("办件类型", KIND_NAMES.get(case.kind, case.kind))]


def lookup_block(head: Letterhead, case: Case, code: str | None) -> QRCode:
    if code:
        caption = f"扫码查询办理进度\n办件编号：{case.case_no}\n查询码：{code}"
    else:  # only the code's keyed hash is kept: it cannot be printed later
        caption = (f"扫码查询办理进度\n办件编号：{case.case_no}\n查询码：见受理时告知的查询码（为保护您的信息，"
                   "本单不再显示）")
    return QRCode(lookup_url(head.public_base_url, case.case_no, code), caption)


def _contact(head: Letterhead) -> Paragraph:
    phone = f"咨询电话：{head.phone}。" if head.phone else ""
    return Paragraph(f"如有疑问，请与{head.center_name}{head.department_name}窗口联系。{phone}"
                     "对办理过程有意见的，可向中心电子监察室反映。")


def receipt(case: Case, head: Letterhead, applicant: Applicant, *, fees: str | None,
            code: str | None = None) -> Document:
    """承诺件告知单: what was accepted, when, and by when it will be done."""
    promised = case.promised_limit_days
    limit = "当场办结（即办件）" if promised == 0 else f"{promised}个工作日（受理当日不计）"
    fields = [*_case_fields(case), *_applicant_fields(applicant),
              Field("受理时间", local_time(case.accepted_at)), Field("受理窗口", case.window or "—"),
              Field("承办人", case.handler_name), Field("承诺时限", limit),
              Field("承诺办结日期", due_text(case.due_at)),
              Field("法定时限", f"{case.legal_limit_days}个工作日，至{due_text(case.legal_due_at)}")]
    if case.expedited:
        fields.append(Field("特事特办", case.expedite_reason or "是"))
    if fees:
        fields.append(Field("收费", fees))
    materials = list(case.materials)
    blocks: list[Block] = [Fields(fields), Heading("已收材料")]
    if materials:
        blocks.append(Table([Column("序号", 0.6), Column("材料名称", 6)],
                            [[str(i), name] for i, name in enumerate(materials, start=1)]))
    else:
        blocks.append(Paragraph("（无）", indent=False))
    blocks += [
        Paragraph(f"您申请的“{case.item_name}”事项已于{local_time(case.accepted_at)}受理。我中心承诺在"
                  f"{promised}个工作日内（{due_text(case.due_at)}）办结。办理中需要补正材料、进入特别程序"
                  "（现场勘查、专家评审、听证等）的，所需时间不计入承诺时限，我们将书面告知。"),
        _contact(head), lookup_block(head, case, code),
        Signature([f"承办人：{case.handler_name}", f"{head.center_name}（盖章）"]),
    ]
    return _document("承诺件告知单", head, case.case_no, case.accepted_at, blocks)


def supplement(case: Case, head: Letterhead, applicant: Applicant, pause: CasePause, *,
               code: str | None = None) -> Document:
    """补正告知书: every missing material at once (一次性告知); the clock stopped on the day of the notice."""
    missing = list(pause.missing_materials)
    blocks: list[Block] = [
        Fields([*_case_fields(case), *_applicant_fields(applicant), Field("受理时间", local_time(case.accepted_at)),
                Field("告知日期", chinese_date(pause.paused_on)),
                Field("补正后办结日期", "材料补齐之日起重新计算，补正期间不计入办理时限")]),
        Paragraph(f"您申请的“{case.item_name}”事项（办件编号 {case.case_no}）经审查，申请材料需要补正。"
                  "现将需要补正的全部材料一次性告知如下，请补齐后到原窗口提交："),
        Table([Column("序号", 0.6), Column("需补正的材料", 6)],
              [[str(i), name] for i, name in enumerate(missing, start=1)] or [["—", pause.reason]]),
        Paragraph(f"补正原因：{pause.reason}", indent=False),
        Paragraph(f"补正前办件的承诺办结日期为{due_text(case.due_at)}；补正期间暂停计时，材料补齐后"
                  "办结日期相应顺延，我们将另行告知。"),
        _contact(head), lookup_block(head, case, code),
        Signature([f"承办人：{case.handler_name}", f"{head.center_name}（盖章）"]),
    ]
    return _document("补正材料告知书", head, case.case_no, None, blocks, dated=pause.paused_on)


def extension(case: Case, head: Letterhead, applicant: Applicant, *, approved_by: str,
              approved_at: datetime, code: str | None = None) -> Document:
    """延期告知书: the days, the reason, the new due date and who approved it."""
    blocks: list[Block] = [
        Fields([*_case_fields(case), *_applicant_fields(applicant), Field("受理时间", local_time(case.accepted_at)),
                Field("延长时限", f"{case.extension_days}个工作日"),
                Field("延期理由", case.extension_reason or "—"),
                Field("延期后办结日期", due_text(case.due_at)),
                Field("批准人", f"{approved_by}（首席代表），{local_time(approved_at)}")]),
        Paragraph(f"您申请的“{case.item_name}”事项（办件编号 {case.case_no}），因{case.extension_reason or '特殊情况'}，"
                  f"不能在承诺时限内办结。经批准，办理时限延长{case.extension_days}个工作日，"
                  f"将于{due_text(case.due_at)}前办结。特此告知。"),
        _contact(head), lookup_block(head, case, code),
        Signature([f"批准人：{approved_by}", f"{head.center_name}（盖章）"]),
    ]
    return _document("延期办理告知书", head, case.case_no, approved_at, blocks)


def refusal(case: Case, head: Letterhead, applicant: Applicant, *, approved_by: str,
            approved_at: datetime, code: str | None = None) -> Document:
    """不予办理通知书: the reason, the legal basis, who approved it, and the applicant's remedies."""
    blocks: list[Block] = [
        Fields([*_case_fields(case), *_applicant_fields(applicant), Field("受理时间", local_time(case.accepted_at)),
                Field("承诺办结日期", due_text(case.due_at)),
                Field("决定日期", local_time(case.completed_at or approved_at))]),
        Paragraph(f"您申请的“{case.item_name}”事项（办件编号 {case.case_no}），经审查，决定不予办理。"),
        Heading("不予办理的理由"), Paragraph(case.refusal_reason or "—"),
        Heading("法律依据"), Paragraph(case.refusal_basis or "—"),
        Paragraph("如对本决定不服，可以自收到本通知书之日起六十日内依法申请行政复议，或者在六个月内依法向人民法院"
                  "提起行政诉讼。"),
        _contact(head), lookup_block(head, case, code),
        Signature([f"批准人：{approved_by}（首席代表）", f"{head.center_name}（盖章）"]),
    ]
    return _document("不予办理通知书", head, case.case_no, approved_at, blocks)


def agency(case: Case, head: Letterhead, applicant: Applicant, agency_row: CaseAgency, *,
           fees: str | None, code: str | None = None) -> Document:
    """代办承办单 (全程代办): the mandate, the agent, the limit and the agent's responsibility."""
    fields = [*_case_fields(case), *_applicant_fields(applicant),
              Field("委托人", agency_row.mandator_masked), Field("委托书编号", agency_row.mandate_reference),
              Field("委托日期", chinese_date(agency_row.mandate_signed_on)), Field("委托事项", agency_row.mandate_scope),
              Field("代办员", agency_row.agent_name), Field("指派时间", local_time(agency_row.assigned_at)),
              Field("承诺时限", f"{case.promised_limit_days}个工作日，于{due_text(case.due_at)}前办结"),
              Field("收费", fees or "代办服务免费")]
    if agency_row.handed_back_at is not None:
        fields += [Field("结果交付", local_time(agency_row.handed_back_at)),
                   Field("费用结算", agency_row.fees_settled or "—")]
    blocks: list[Block] = [
        Fields(fields),
        Paragraph(f"代办员{agency_row.agent_name}受委托全程代办上述事项，负责材料的传递、各环节的跟踪催办和办理结果的"
                  "交付，在承诺时限内办结；因代办员原因超出时限的，由代办员所在单位承担责任。代办不收取任何费用，"
                  "法定收费按规定标准代收代缴，并出具票据。"),
        _contact(head), lookup_block(head, case, code),
        Signature([f"代办员：{agency_row.agent_name}", "委托人（签字）：", f"{head.center_name}（盖章）"]),
    ]
    return _document("全程代办承办单", head, case.case_no, agency_row.assigned_at, blocks)


def one_time_notice(notice: Notice, head: Letterhead, applicant: Applicant) -> Document:
    """一次性告知书: everything missing for an item, at once; no case and no clock yet."""
    names = [m.get("name", "") for m in notice.missing]
    blocks: list[Block] = [
        Fields([Field("办理事项", f"{notice.item_name}（{notice.item_code}）"),
                *_applicant_fields(applicant), Field("告知时间", local_time(notice.issued_at)),
                Field("告知人", notice.issued_by_name), Field("窗口", notice.window or "—")]),
        Paragraph(f"您申请办理的“{notice.item_name}”事项，申请材料不齐全。现将需要补齐的全部材料一次性告知如下："),
        Table([Column("序号", 0.6), Column("需补齐的材料", 6)],
              [[str(i), name] for i, name in enumerate(names, start=1)]),
        Paragraph(f"请补齐上述材料后，持本告知书（编号 {notice.notice_no}）到窗口申请，窗口将据此受理，不再要求"
                  "本告知书以外的材料。办理时限自受理之日起计算。"),
        _contact(head),
        QRCode(guide_url(head.public_base_url, notice.center_id, notice.item_code), "扫码查看该事项的办事指南"),
        Signature([f"告知人：{notice.issued_by_name}", f"{head.center_name}（盖章）"]),
    ]
    return _document("一次性告知书", head, notice.notice_no, notice.issued_at, blocks, label="告知书编号")


def guide(item: PublicItemOut, head: Letterhead) -> Document:
    """办事指南: the item as the public guide holds it; the parts an item lacks are left out. No person."""
    fields = [Field("实施部门", item.department_name),
              Field("办件类型", KIND_NAMES.get(item.kind, item.kind)),
              Field("法定时限", f"{item.legal_limit_days}个工作日"),
              Field("承诺时限", "当场办结" if item.promised_limit_days == 0 else f"{item.promised_limit_days}个工作日")]
    if item.speedup_percent is not None:
        fields.append(Field("提速率", f"{item.speedup_percent:g}%"))
    if item.service_objects:
        fields.append(Field("服务对象", "、".join(SERVICE_OBJECTS.get(o, o) for o in item.service_objects)))
    fields.append(Field("今日受理预计办结", chinese_date(item.due_date_if_accepted_today)))
    blocks: list[Block] = [Fields(fields)]
    if item.conditions:
        blocks += [Heading("申请条件"), *[Paragraph(f"{i}. {c}", indent=False)
                                          for i, c in enumerate(item.conditions, start=1)]]
    if item.materials:
        blocks += [Heading("申请材料"), Table(
            [Column("序号", 0.6), Column("材料名称", 5), Column("是否必需", 1.2)],
            [[str(i), m.name, "必需" if m.required else "视情况"] for i, m in enumerate(item.materials, start=1)])]
    if item.procedure:
        blocks += [Heading("办理流程"), Table(
            [Column("步骤", 0.6), Column("环节", 1.6), Column("说明", 5)],
            [[str(i), s.name, s.description or ""] for i, s in enumerate(item.procedure, start=1)])]
    if item.stages:
        blocks += [Heading("办理环节时限"), Table([Column("环节", 2), Column("时限（工作日）", 2)],
                                             [[s.name, str(s.limit_days)] for s in item.stages])]
    if item.fees or item.fee_basis:
        blocks.append(Heading("收费标准及依据"))
        if item.fees:
            blocks.append(Paragraph(item.fees, indent=False))
        if item.fee_basis:
            blocks.append(Paragraph(f"依据：{item.fee_basis}", indent=False))
    if item.legal_basis:
        blocks += [Heading("设定依据"), Paragraph(item.legal_basis, indent=False)]
    if item.files:
        blocks += [Heading("表格下载"), Paragraph("、".join(f.name for f in item.files), indent=False)]
    if item.fallback_years:
        blocks.append(Paragraph(f"注：{'、'.join(str(y) for y in item.fallback_years)}年的法定节假日安排尚未公布，"
                                "预计办结日期按周一至周五计算，可能调整。", indent=False))
    blocks += [_contact(head), QRCode(guide_url(head.public_base_url, item.center_id, item.code),
                                      "扫码查看在线办事指南、下载表格")]
    return Document(title=f"办事指南：{item.name}", issuer=head.center_name, number=item.code,
                    number_label="事项编码", dated=item.today,
                    blocks=tuple(blocks), footer=f"{head.center_name} 办事指南", keywords=(item.code,))


def _document(title: str, head: Letterhead, number: str, at: datetime | None, blocks: Sequence[Block], *,
              dated: date | None = None, label: str = "办件编号") -> Document:
    day = dated if dated is not None else clock.local_date(at) if at is not None else clock.today_local()
    return Document(title=title, issuer=head.center_name, number=number, number_label=label, dated=day,
                    blocks=tuple(blocks),
                    footer=number, keywords=(number,))
