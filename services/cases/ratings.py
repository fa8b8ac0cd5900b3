"""Ratings (好差评) attached to cases: the queue's evaluation.submitted, when it names a case (one per case)."""

from __future__ import annotations

from sqlalchemy import BigInteger, DateTime, SmallInteger, String, Text, exists, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.models import Case, CaseRating
from shared.events.catalog import EvaluationSubmitted
from shared.events.envelope import Envelope


async def attach_rating(session: AsyncSession, envelope: Envelope) -> None:
    """evaluation.submitted -> case_ratings when it names a case of the same centre; a case keeps its first
    rating. A number that is not a case of that centre (mistyped on a phone) is not kept: it must not take
    the place of the real case's rating."""
    rating = envelope.payload()
    assert isinstance(rating, EvaluationSubmitted)
    if rating.case_no is None:
        return
    values = select(literal(rating.evaluation_id, BigInteger), literal(rating.case_no, String),
                    literal(rating.center_id, String), literal(rating.ticket_id, BigInteger),
                    literal(rating.rating, SmallInteger), literal(rating.comment, Text), literal(rating.window, String),
                    literal(rating.clerk_id, String), literal(rating.submitted_at, DateTime(timezone=True))).where(
        exists().where(Case.case_no == rating.case_no, Case.center_id == rating.center_id))
    await session.execute(insert(CaseRating).from_select(
        ["evaluation_id", "case_no", "center_id", "ticket_id", "rating", "comment", "window", "clerk_id",
         "submitted_at"], values).on_conflict_do_nothing())
