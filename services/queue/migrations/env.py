"""Alembic environment of the queue service (its own database)."""

from services.queue.models import Base
from shared import tables
from shared.migrate import run_env

run_env([Base.metadata, tables.metadata])
