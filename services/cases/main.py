"""The cases service. 办件: departments, item catalogue, calendar, cases and their legal clock."""

from fastapi import FastAPI

from services.cases.calendar.router import router as calendar_router
from services.cases.calendar.service import check_package_at_startup
from services.cases.cases_router import public_router as public_cases_router
from services.cases.cases_router import router as cases_router
from services.cases.catalogue.router import router as catalogue_router
from services.cases.config import Settings, get_settings
from services.cases.consumers import CONSUMERS
from services.cases.documents.router import router as documents_router
from services.cases.intake.router import router as intake_router
from services.cases.joint.router import router as joint_router
from services.cases.registers.router import router as registers_router
from services.cases.router import router as centers_router
from shared.app import create_service_app
from shared.clock import Clock
from shared.events.deadletters import dead_letters_router, handler_registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings, clock=clock,
        title="Hall cases service",
        description="办件: departments, item catalogue, calendar, cases and their legal clock.",
        # documents before registers: GET /notices/{notice_no}.pdf must not be taken for GET /notices/{notice_no}
        routers=[calendar_router, centers_router, catalogue_router, cases_router, public_cases_router,
                 joint_router, documents_router, registers_router, intake_router,
                 dead_letters_router(handler_registry(settings.service_name, CONSUMERS))],
        tags=[{"name": "calendar", "description": "working-day calendar (工作日历): overrides, years, deadlines"},
              {"name": "catalogue", "description": "departments (窗口单位), item catalogue (事项目录), public guide"},
              {"name": "centers", "description": "centres (政务服务中心): read copy of the queue service's"},
              {"name": "cases", "description": "cases (办件): acceptance, the state machine, lists and history"},
              {"name": "public", "description": "tokenless: the catalogue (办事指南) and the case lookup (办件查询)"},
              {"name": "dead letters", "description": "events a consumer could not apply, and their replay"}],
        on_startup=[check_package_at_startup],
    )
