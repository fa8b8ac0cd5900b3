"""Tables of the notify service (its own database; the shared platform tables come from shared.tables)."""

from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata
from shared.readcopy import CenterCopyColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class CenterCopy(CenterCopyColumns, Base):
    """Read copy of the queue service's centres, kept from `center.upserted` events."""
