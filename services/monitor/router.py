"""HTTP endpoints of the monitor service: the centres it knows (a read copy of the queue service's)."""

from services.monitor.models import CenterCopy
from shared.readcopy import center_copy_router

router = center_copy_router(CenterCopy)
