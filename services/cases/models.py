"""Tables of the cases service (its own database; the shared platform tables come from shared.tables)."""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class CenterCopy(Base):
    """Read copy of the queue service's centres (政务服务中心), kept from `center.upserted` events."""

    __tablename__ = "centers"
    __table_args__ = {
        "comment": "Read copy of queue's centres, from center.upserted (never written by this service)",
    }

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="when the centre last changed at the source (occurred_at)")
    last_event_sequence: Mapped[int] = mapped_column(
        BigInteger, comment="queue's outbox sequence of the event applied last; older events are ignored")
