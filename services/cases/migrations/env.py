"""Alembic environment of the cases service (its own database)."""

from services.cases.models import Base
from shared import tables
from shared.migrate import run_env

run_env([Base.metadata, tables.metadata])
