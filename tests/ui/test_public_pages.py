"""The public pages in a real browser, on a phone (390x844) and on the hall's PC (1366x768): booking and cancelling
an appointment online (网上预约), the case lookup (办件查询), the public board (办件公示), the service guide
(办事指南) with each item's QR code, and a complaint (投诉). No token anywhere: the pages call the services'
public routes only; a refusal is shown in Chinese words, never an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.ui.harness import CENTRE, MORNING, Hall, shot, wait_for

PHONE = (390, 844)
PC = (1366, 768)
DEPARTMENT = "D01"
ITEM = "HJ-001"
APPLICANT = "欧阳娜娜"
ID = "11010519491231002X"
BOOKER_PHONE = "13912345678"
TOMORROW = MORNING.date() + timedelta(days=1)  # Wednesday 2026-12-09, a working day


@dataclass
class Seeded:
    case_no: str
    lookup_code: str


def _until_created(hall: Hall, method: str, path: str, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> Any:
    """A write that needs a read copy the broker brings (the centre, the clerk): retried until it is there."""
    answers: list[httpx.Response] = []

    def attempt() -> bool:
        answers.append(hall.api(method, path, headers, **kwargs))
        return answers[-1].status_code < 300

    wait_for(attempt, within=30, what=f"{method} {path} to succeed (last: {answers[-1].text if answers else ''})")
    return answers[-1].json()


@pytest.fixture(scope="module")
def seeded(hall: Hall) -> Seeded:
    return seed_public(hall)


def seed_public(hall: Hall) -> Seeded:
    """A department and an item of the guide, a case the clerk accepted, and slots of 户籍办理 every day
    09:00-12:00 by the hour, two places each."""
    _until_created(hall, "POST", "/cases/departments",
                   json={"center_id": CENTRE, "code": DEPARTMENT, "name": "区公安分局"})
    hall.ok("POST", "/cases/items", json={
        "center_id": CENTRE, "code": ITEM, "name": "户口迁移登记", "department": DEPARTMENT, "kind": "promised",
        "legal_limit_days": 20, "promised_limit_days": 5,
        "materials": [{"code": "M1", "name": "居民身份证", "required": True},
                      {"code": "M2", "name": "居民户口簿", "required": True},
                      {"code": "M3", "name": "房屋产权证明", "required": False}],
        "fees": "不收费", "conditions": ["在本区有合法固定住所", "本人或其直系亲属申请"],
        "procedure": [{"name": "申请", "description": "到窗口提交材料"}, {"name": "受理"}, {"name": "决定"}],
        "service_objects": ["natural_person"]})
    hall.ok("POST", "/cases/items", json={
        "center_id": CENTRE, "code": "HJ-002", "name": "居民身份证换领", "department": DEPARTMENT,
        "kind": "immediate", "legal_limit_days": 0, "fees": "20 元"})
    case = _until_created(hall, "POST", "/cases/cases", headers=hall.clerk, json={
        "center": CENTRE, "item_code": ITEM, "applicant": {"name": APPLICANT, "id_number": ID},
        "materials": ["居民身份证", "居民户口簿"]})
    slots = [{"weekday": d, "start": "09:00", "end": "12:00", "minutes": 60, "capacity": 2} for d in range(1, 8)]
    hall.ok("PATCH", f"/queue/centers/{CENTRE}/services/HJ", json={"slots": slots})
    return Seeded(case_no=case["case_no"], lookup_code=case["lookup_code"])


def _local_day(day: date) -> str:
    return f"{day.month}月{day.day}日"
