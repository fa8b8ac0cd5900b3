"""Alembic environment of the notify service (its own database)."""

from services.notify.models import Base
from shared import tables
from shared.migrate import run_env

run_env([Base.metadata, tables.metadata])
