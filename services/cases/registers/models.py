"""Tables of cases II (registers). Imported by services/cases/models.py so Base.metadata holds every table."""

from services.cases.models import Base  # noqa: F401
