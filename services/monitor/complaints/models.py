"""Tables of supervision II (complaints). Imported by services/monitor/models.py so Base.metadata holds every table."""

from services.monitor.models import Base  # noqa: F401
