"""Gap-free daily sequences keyed by (scope, local business date): A001.., case and notice numbers.

The increment is one upsert in the caller's transaction. The row stays locked until that transaction
ends, so concurrent callers queue on it; a rollback takes its number back, so numbers are gap-free
as well as unique. A new local date starts a new row, hence 1 again after midnight (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.tables import daily_counters


async def next_number(session: AsyncSession, scope: str, business_date: date | None = None) -> int:
    """Take the next number of `scope` for `business_date` (default: today by the shared clock)."""
    day = business_date or clock.today_local()
    stmt = (
        insert(daily_counters)
        .values(scope=scope, business_date=day, value=1)
        .on_conflict_do_update(
            index_elements=[daily_counters.c.scope, daily_counters.c.business_date],
            set_={"value": daily_counters.c.value + literal(1)},
        )
        .returning(daily_counters.c.value)
    )
    return int((await session.execute(stmt)).scalar_one())


async def current_number(session: AsyncSession, scope: str, business_date: date) -> int:
    """The last number taken for the scope and date (0 if none)."""
    value = await session.scalar(
        select(daily_counters.c.value).where(daily_counters.c.scope == scope,
                                             daily_counters.c.business_date == business_date))
    return int(value or 0)
