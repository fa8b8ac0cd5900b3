"""Tables of the notify service (its own database; the shared platform tables come from shared.tables)."""

from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()
