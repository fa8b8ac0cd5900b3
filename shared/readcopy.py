"""Read copies of another service's reference data, kept from its events (DOMAIN.md: services never read
each other's databases): the queue service's centres (cases, monitor, notify keep them) and identity's
staff (cases for handler names; the queue for its window signs)."""


from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, Boolean, DateTime, String, Table, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import FromClause

from shared.auth import CurrentUser
from shared.db import SessionDep
from shared.errors import NotFound
from shared.events.catalog import CenterUpserted, UserUpserted
from shared.events.consumer import ConsumerSpec, upsert_read_copy
from shared.events.envelope import Envelope
from shared.events.topics import topic_for


class CenterCopyColumns:
    """Columns of a read copy of the queue service's centres (政务服务中心), from `center.upserted`."""

    __tablename__ = "centers"
    __table_args__: Any = {
        "comment": "Read copy of queue's centres, from center.upserted (never written by this service)",
    }
    if TYPE_CHECKING:
        # what declarative mapping gives each concrete subclass (typing only, as DeclarativeBase declares it)
        __table__: ClassVar[FromClause]

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="when the centre last changed at the source (occurred_at)")
    last_event_sequence: Mapped[int] = mapped_column(
        BigInteger, comment="queue's outbox sequence of the event applied last; older events are ignored")


class CenterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    address: str | None
    updated_at: datetime


def table_of(model: type[Any]) -> Table:
    """The Table a declarative model is mapped to (for core statements such as upsert_read_copy)."""
    table = model.__table__
    if not isinstance(table, Table):  # a declarative class with a __tablename__ is always mapped to a Table
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def center_consumer(model: type[CenterCopyColumns]) -> ConsumerSpec:
    """The consumer that keeps `model` equal to the queue's centres."""
    table = table_of(model)

    async def copy_center(session: AsyncSession, envelope: Envelope) -> None:
        """center.upserted -> the read copy, unless a newer event of that centre was applied."""
        center = envelope.payload()
        assert isinstance(center, CenterUpserted)
        if envelope.sequence is None:
            raise ValueError("center.upserted carries no outbox sequence: cannot order it")
        await upsert_read_copy(session, table, {
            "id": center.id, "name": center.name, "address": center.address,
            "updated_at": envelope.occurred_at, "last_event_sequence": envelope.sequence,
        })

    return ConsumerSpec("centers", (topic_for("queue").name,), {"center.upserted": copy_center})


class StaffCopyColumns:
    """Columns of a read copy of identity's users (staff), from `user.upserted`: what a case shows of its
    handler and a window's sign of its clerk (岗位公示). Contacts are never copied: nobody here needs them."""

    __tablename__ = "staff"
    __table_args__: Any = {"comment": "Read copy of identity's users, from user.upserted (never written here)"}
    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    post_title: Mapped[str | None] = mapped_column(String(100))
    photo_url: Mapped[str | None] = mapped_column(String(500))  # as wide as identity's
    role: Mapped[str] = mapped_column(String(32))
    centers: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    department: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


def staff_consumer(model: type[StaffCopyColumns]) -> ConsumerSpec:
    """The consumer that keeps `model` equal to identity's users (a deactivated user stays, inactive)."""
    table = table_of(model)

    async def copy_staff(session: AsyncSession, envelope: Envelope) -> None:
        """user.upserted -> the staff copy, unless a newer event of that user was applied (identity's outbox
        sequence orders them: a re-sent or late event changes nothing)."""
        user = envelope.payload()
        assert isinstance(user, UserUpserted)
        if envelope.sequence is None:
            raise ValueError("user.upserted carries no outbox sequence: cannot order it")
        await upsert_read_copy(session, table, {
            "id": user.id, "display_name": user.display_name, "post_title": user.post_title,
            "photo_url": user.photo_url, "role": user.role, "centers": list(user.centers),
            "department": user.department, "active": user.active, "updated_at": envelope.occurred_at,
            "last_event_sequence": envelope.sequence,
        })

    return ConsumerSpec("staff", (topic_for("identity").name,), {"user.upserted": copy_staff})


def center_copy_router(model: type[CenterCopyColumns]) -> APIRouter:
    """`GET /centers` and `GET /centers/{id}` answered from the read copy, filtered to the caller's centres."""
    router = APIRouter(prefix="/centers", tags=["centers"])

    async def _center(center_id: str, session: SessionDep, user: CurrentUser) -> CenterCopyColumns:
        user.check_center(center_id)
        center = await session.get(model, center_id)
        if center is None:
            raise NotFound(f"centre {center_id} is not known here", field="center_id")
        return center

    @router.get("", response_model=list[CenterOut])
    async def list_centers(session: SessionDep, user: CurrentUser) -> list[CenterCopyColumns]:
        """The centres the caller may see, from this service's read copy."""
        stmt = select(model).order_by(model.id)
        if not user.spans_all_centers:
            stmt = stmt.where(model.id.in_(user.centers))
        return list((await session.scalars(stmt)).all())

    @router.get("/{center_id}", response_model=CenterOut)
    async def get_center(center: Annotated[CenterCopyColumns, Depends(_center)]) -> CenterCopyColumns:
        """One centre, from this service's read copy."""
        return center

    return router
