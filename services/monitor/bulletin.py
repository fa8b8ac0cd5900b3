"""The monthly bulletin (通报) as a printable PDF: the month's KPIs, its sanctions and the window ranking, from
the same figures the API answers (services/monitor/kpis.py, scores.py), through shared/documents."""

from __future__ import annotations

from calendar import monthrange
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import kpis, scores
from services.monitor.models import CenterCopy
from shared import clock
from shared.documents.model import (
    Block,
    Column,
    Document,
    Field,
    Fields,
    Heading,
    Paragraph,
    Signature,
    Table,
)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


async def bulletin(session: AsyncSession, center_id: str, month: str) -> Document:
    year, mon = int(month[:4]), int(month[5:7])
    first, last = date(year, mon, 1), date(year, mon, monthrange(year, mon)[1])
    centre = await session.get(CenterCopy, center_id)
    name = centre.name if centre else center_id
    cases = (await kpis.case_kpis(session, center_id, first, last))
    hall = (await kpis.hall_kpis(session, center_id, first, last))
    c = cases[0] if cases else None
    h = hall[0] if hall else None
    lo, hi = scores.month_bounds(month)
    sanctions = (await session.execute(text(
        "SELECT s.notice_no, coalesce(d.name, s.department) AS dept, s.level, f.case_no, f.item_name "
        "FROM sanctions s JOIN findings f ON f.id = s.finding_id "
        "LEFT JOIN departments d ON d.center_id = s.center_id AND d.code = s.department "
        "WHERE s.center_id = :center AND s.status <> 'revoked' AND s.issued_at >= :lo AND s.issued_at < :hi "
        "ORDER BY s.issued_at, s.id"), {"center": center_id, "lo": lo, "hi": hi})).all()
    ranked = await scores.month_scores(session, center_id, month)
    blocks: list[Block] = [
        Heading("一、办件情况"),
        Fields([Field("受理办件", f"{c.accepted if c else 0} 件"), Field("办结办件", f"{c.completed if c else 0} 件"),
                Field("承诺件按时办结率", _percent(c.promised_on_time_rate if c else None)),
                Field("即办件当场办结率", _percent(c.immediate_on_the_spot_rate if c else None)),
                Field("超时办结", f"{c.completed_late if c else 0} 件，共 {c.overdue_days if c else 0} 个工作日"),
                Field("提速率", _percent(c.speedup_rate if c else None))]),
        Heading("二、排队与评价"),
        Fields([Field("取号", f"{h.tickets if h else 0} 人次"),
                Field("等候时间中位数", f"{round((h.wait_p50_s or 0) / 60)} 分钟" if h and h.wait_p50_s else "—"),
                Field("过号率", _percent(h.no_show_rate if h else None)),
                Field("满意率", _percent(h.satisfaction_rate if h else None))]),
        Heading("三、问责情况"),
    ]
    if sanctions:
        blocks.append(Table([Column("文号", 1.6), Column("单位", 1.4), Column("处理", 0.8), Column("事由", 2.2)],
                            [[r.notice_no, r.dept, scores.KIND_WORDS[r.level], f"{r.item_name or ''}"
                              f"{f'（{r.case_no}）' if r.case_no else ''}"] for r in sanctions]))
    else:
        blocks.append(Paragraph("本月无问责。"))
    blocks.append(Heading("四、窗口考评"))
    if ranked:
        blocks.append(Table([Column("名次", 0.6), Column("窗口", 0.8), Column("得分", 0.8), Column("扣分", 0.8),
                             Column("加分", 0.8)],
                            [[str(s.rank), f"{s.window}号", str(s.score), str(s.deducted), str(s.bonus)]
                             for s in ranked]))
    else:
        blocks.append(Paragraph("本月无窗口考评数据。"))
    blocks.append(Signature((f"{name}电子监察", "（盖章）")))
    return Document(title=f"电子监察月度通报（{year}年{mon}月）", issuer=name, blocks=blocks,
                    number=f"{center_id}-TB-{year}{mon:02d}", number_label="编号", dated=clock.today_local(),
                    footer=f"{name}电子监察月度通报 {year}年{mon}月", keywords=(center_id, month))
