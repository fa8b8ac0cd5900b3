"""Tables of the queue service: centres (and, later, schedules, services, windows, tickets)."""

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Center(Base):
    """A service hall (县行政服务中心, 乡镇便民服务中心). Its id is also its case-number prefix."""

    __tablename__ = "centers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
