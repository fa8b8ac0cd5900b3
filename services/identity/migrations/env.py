"""Alembic environment of the identity service (its own database)."""

from services.identity.models import Base
from shared import tables
from shared.migrate import run_env

run_env([Base.metadata, tables.metadata])
