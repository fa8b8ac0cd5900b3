"""Alembic environment of the monitor service (its own database)."""

from services.monitor.models import Base
from shared import tables
from shared.migrate import run_env

run_env([Base.metadata, tables.metadata])
