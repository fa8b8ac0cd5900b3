"""`make demo`: a simulated day of a busy hall, through the public API, on compressed time.

The hall is started as `make run` starts it (same var/, same ports), every process on one simulated clock
that replays the previous working day from 07:30 at `--speed` times real time; a driver then plays the day
through the gateway: arrivals with a morning and an afternoon peak, service times drawn per service, green
channel and appointment shares, clerks calling and serving at their windows (their terminals beating every
45 simulated seconds), no-shows, cases accepted for part of the tickets with real items and limits,
supplements, a refusal approved by the chief representative, ratings (mostly good, some bad), a window left
vacant, a complaint, cases of the previous system imported already late and a supervisor confirming one of
them into a 警告. At the end it prints what it did beside what the monitor's KPIs say of the same day, and
stops the hall; `make run` afterwards shows the day in the past on every screen and dashboard.

Each terminal, kiosk and evaluator talks from its own loopback address (127.0.0.N), as devices of a hall
do: the gateway's sign-in rate limit is per address. Tokens are refreshed by their expiry, which is wall
time (Envoy checks it), so a faster clock does not shorten them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shared import clock
from shared.calendar.engine import WorkCalendar
from shared.devinfra.envoy import ROOT

CENTRE = "320102"
CENTRE_NAME = "玄武区政务服务中心"
HEARTBEAT = timedelta(seconds=45)  # the worker loses a heartbeat after 90 simulated seconds
OPEN_AM, CLOSE_AM, OPEN_PM, CLOSE_PM = (9, 0), (12, 0), (13, 30), (17, 30)
# arrivals per hour, local: a morning and an afternoon peak (a county hall of eight windows)
PROFILE = ((9, 10, 44), (10, 11, 52), (11, 12, 30), (13.5, 14, 24), (14, 15, 40), (15, 16, 44), (16, 17.5, 20))


@dataclass(frozen=True)
class ItemPlan:
    code: str
    name: str
    kind: str  # promised | immediate
    legal_limit_days: int
    promised_limit_days: int
    materials: tuple[str, ...]


@dataclass(frozen=True)
class ServicePlan:
    code: str
    name: str
    prefix: str
    department: str
    share: float  # of arrivals
    minutes: float  # median service time
    sigma: float  # of the log-normal
    item: ItemPlan | None = None
    case_share: float = 0.0  # of the served tickets: a case accepted


DEPARTMENTS = {"GA": "区公安分局", "SB": "区人力资源和社会保障局", "SC": "区市场监督管理局", "JS": "区住房和城乡建设局"}
SERVICES = (
    ServicePlan("HJ", "户籍办理", "A", "GA", 0.30, 6, 0.45,
                ItemPlan("GA-001", "户口迁移登记", "promised", 20, 5, ("居民身份证", "居民户口簿")), 0.5),
    ServicePlan("SB", "社保业务", "B", "SB", 0.30, 5, 0.5,
                ItemPlan("SB-001", "社会保障卡补领", "immediate", 0, 0, ("居民身份证",)), 0.6),
    ServicePlan("SC", "企业开办", "C", "SC", 0.25, 12, 0.4,
                ItemPlan("SC-001", "营业执照变更登记", "promised", 15, 3, ("变更登记申请书", "营业执照正副本")), 0.8),
    ServicePlan("JS", "工程建设", "D", "JS", 0.15, 15, 0.5,
                ItemPlan("JS-001", "建设工程施工许可", "promised", 20, 10, ("施工许可申请表", "施工合同")), 0.7),
)
WINDOWS = (("1", {"HJ": 2, "SB": 1}), ("2", {"HJ": 2}), ("3", {"SB": 2, "HJ": 1}), ("4", {"SB": 2}),
           ("5", {"SC": 2}), ("6", {"SC": 2, "JS": 1}), ("7", {"JS": 2}), ("8", {"HJ": 1, "SB": 1, "SC": 1}))
RATINGS = ((5, 0.62), (4, 0.24), (3, 0.08), (2, 0.03), (1, 0.03))
GREEN_SHARE, APPOINTMENT_SHARE, NO_SHOW_SHARE, RATED_SHARE, SUPPLEMENT_SHARE = 0.05, 0.10, 0.04, 0.85, 0.15
VACANT_WINDOW, VACANT_AT, VACANT_FOR = "5", (10, 5), timedelta(minutes=8)  # 企业开办: its line is long
PASSWORD = "Demo-hall-2026!"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"


def id_number(rng: random.Random) -> str:
    """A valid 18-character resident ID number (ISO 7064 MOD 11-2 check digit) of someone born 1950-2004."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 54))
    body = f"320102{born:%Y%m%d}{rng.randrange(1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def person(rng: random.Random) -> dict[str, str]:
    return {"name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
            "id_number": id_number(rng), "phone": f"13{rng.randrange(10)}{rng.randrange(10**8):08d}"}


def previous_working_day(today: date, calendar: WorkCalendar | None = None) -> date:
    return (calendar or WorkCalendar()).subtract_working_days(today, 1)


def local(day: date, hm: tuple[float, float] | tuple[int, int]) -> datetime:
    hours, minutes = hm
    return datetime(day.year, day.month, day.day, tzinfo=clock.LOCAL_TZ) + timedelta(hours=hours, minutes=minutes)


def arrivals(day: date, start: datetime, end: datetime, rng: random.Random, scale: float = 1.0) -> list[datetime]:
    """Arrival instants by the profile (a Poisson process per hour band), between `start` and `end`."""
    found = []
    for begin, finish, per_hour in PROFILE:
        band_start, band_end = local(day, (begin, 0)), local(day, (finish, 0))
        t = band_start
        while True:
            t += timedelta(hours=rng.expovariate(per_hour * scale))
            if t >= band_end:
                break
            if start <= t < end:
                found.append(t)
    return found


def percentile(values: list[float], q: float) -> float | None:
    """PostgreSQL's percentile_cont: linear between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- the driver ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    issued: int = 0
    green: int = 0
    appointments: int = 0
    called: int = 0
    no_shows: int = 0
    served: int = 0
    waits: list[float] = field(default_factory=list)
    services: list[float] = field(default_factory=list)
    ratings: Counter[int] = field(default_factory=Counter)
    cases: int = 0
    supplements: int = 0
    refused: int = 0
    completed: int = 0
    imported_late: int = 0
    complaints: int = 0
    confirmed: int = 0
    errors: list[str] = field(default_factory=list)


class Api:
    """One device's client on the gateway from its own loopback address, with its token."""

    def __init__(self, gateway: str, address: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.AsyncClient(base_url=f"{gateway}/api", timeout=30,
                                        transport=httpx.AsyncHTTPTransport(local_address=address, retries=2))
        self.headers = headers or {}
        self.refresh: str | None = None
        self.expires = 0.0

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204), waits: bool = False,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """The request; a 429 (the sign-in rate limit) is tried again after its Retry-After; with `waits`, a
        404/409/422 too for a while (a write that needs a read copy the broker brings); else not in `ok`
        raises."""
        await self._fresh()
        answer: httpx.Response | None = None
        for _ in range(60):
            answer = await self.client.request(method, path, headers=self.headers if headers is None else headers,
                                               **kwargs)
            if answer.status_code in ok:
                return answer
            if answer.status_code == 429:
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            elif waits and answer.status_code in (404, 409, 422):
                await asyncio.sleep(0.5)
            else:
                break
        assert answer is not None
        raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")

    async def _fresh(self) -> None:
        if self.refresh is not None and clock.wall_now().timestamp() > self.expires - 60:
            answer = await self.client.post("/auth/refresh", json={"refresh_token": self.refresh})
            if answer.status_code == 200:
                self._take(answer.json())

    def _take(self, tokens: dict[str, Any]) -> None:
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.refresh = tokens.get("refresh_token", self.refresh)
        self.expires = clock.wall_now().timestamp() + float(tokens.get("expires_in", 900))

    async def device(self, key: str) -> None:
        self._take((await self.call("POST", "/auth/token", json={"key": key}, headers={})).json())

    async def login(self, terminal: Api, username: str) -> None:
        self._take((await self.call("POST", "/auth/login", json={"username": username, "password": PASSWORD},
                                    headers=terminal.headers)).json())

    async def close(self) -> None:
        await self.client.aclose()


class Day:
    """The simulated day at the centre: set-up, then arrivals, windows and the office, until `end`."""

    def __init__(self, gateway: str, admin_token: str, day: date, end: datetime, seed: int,
                 progress: bool = True) -> None:
        self.gateway, self.day, self.end = gateway, day, end
        self.rng = random.Random(seed)
        self.admin = Api(gateway, "127.0.0.1", {"Authorization": f"Bearer {admin_token}"})
        self.kiosk = Api(gateway, "127.0.0.2")
        self.office = Api(gateway, "127.0.0.3")  # the supervisor
        self.chief = Api(gateway, "127.0.0.4")  # the chief representative (首席代表)
        self.tally = Tally()
        self.progress = progress
        self.open_cases: list[tuple[str, Api]] = []
        self.supplemented: list[tuple[str, Api, datetime]] = []
        self.refusal_done = False
        self.services = {s.code: s for s in SERVICES}
        self.started = clock.now()

    # -- set-up (idempotent: a second demo finds what the first made) --

    async def _made(self, path: str, body: dict[str, Any], method: str = "POST") -> Any:
        answer = await self.admin.call(method, path, json=body, ok=(200, 201, 409), waits=True)
        return answer.json() if answer.status_code != 409 else None

    async def _user(self, username: str, name: str, role: str, department: str | None = None) -> None:
        body: dict[str, Any] = {"username": username, "password": PASSWORD, "display_name": name,
                                "role": role, "centers": [CENTRE], "post_title": "综合受理窗口"}
        if department:
            body["department"] = department
        await self._made("/auth/users", body)

    async def _key(self, role: str, label: str, window: str | None = None) -> str:
        body: dict[str, Any] = {"role": role, "center_id": CENTRE, "label": label}
        if window:
            body["window"] = window
        answer = await self.admin.call("POST", "/auth/device-keys", json=body, waits=True)
        return str(answer.json()["key"])

    async def set_up(self) -> None:
        await self._made("/queue/centers", {"id": CENTRE, "name": CENTRE_NAME})
        for plan in SERVICES:
            await self._made(f"/queue/centers/{CENTRE}/services", {
                "code": plan.code, "name": plan.name, "prefix": plan.prefix, "department": plan.department,
                "wait_threshold_minutes": 30, "default_service_minutes": round(plan.minutes)})
            slots = [{"weekday": d, "start": "09:00", "end": "11:30", "minutes": 30, "capacity": 2} for d in range(1, 6)]
            await self.admin.call("PATCH", f"/queue/centers/{CENTRE}/services/{plan.code}", json={"slots": slots})
        for number, weights in WINDOWS:
            await self._made(f"/queue/centers/{CENTRE}/windows", {
                "number": number, "name": f"综合受理 {number} 号窗口",
                "services": [{"service_code": c, "weight": w} for c, w in weights.items()]})
        for code, name in DEPARTMENTS.items():
            await self._made("/cases/departments", {"center_id": CENTRE, "code": code, "name": name})
        for plan in SERVICES:
            if plan.item is not None:
                item = plan.item
                await self._made("/cases/items", {
                    "center_id": CENTRE, "code": item.code, "name": item.name, "department": plan.department,
                    "kind": item.kind, "legal_limit_days": item.legal_limit_days,
                    "promised_limit_days": item.promised_limit_days,
                    "materials": [{"code": f"M{i + 1}", "name": m, "required": True}
                                  for i, m in enumerate(item.materials)]})
        await self._user("demo.office", "监察室 周平", "supervisor")
        await self._user("demo.chief", "首席代表 吴刚", "chief_rep", "GA")
        await self.kiosk.device(await self._key("kiosk", "一楼取号机"))
        for api, username in ((self.office, "demo.office"), (self.chief, "demo.chief")):
            api._take((await api.call("POST", "/auth/login", json={"username": username, "password": PASSWORD},
                                      headers={})).json())

    async def window(self, number: str, weights: dict[str, int], index: int) -> Window:
        department = self.services[next(iter(weights))].department
        username = f"demo.clerk{number}"
        await self._user(username, f"{self.rng.choice(SURNAMES)}{self.rng.choice(GIVEN)}", "clerk", department)
        terminal = Api(self.gateway, f"127.0.0.{20 + index}")
        await terminal.device(await self._key("terminal", f"{number} 号窗口终端", number))
        clerk = Api(self.gateway, f"127.0.0.{20 + index}")
        await clerk.login(terminal, username)
        evaluator = Api(self.gateway, f"127.0.0.{40 + index}")
        await evaluator.device(await self._key("evaluator", f"{number} 号窗口评价器", number))
        return Window(self, number, weights, department, terminal, clerk, evaluator)

    # -- the day --

    async def sleep_until(self, moment: datetime) -> None:
        delta = (moment - clock.now()).total_seconds()
        if delta > 0:
            await asyncio.sleep(delta / max(clock.speed(), 1e-9))

    async def arrive(self, at: datetime) -> None:
        await self.sleep_until(at)
        who = person(self.rng)
        draw = self.rng.random()
        plan = self.rng.choices(SERVICES, weights=[s.share for s in SERVICES])[0]
        if draw < GREEN_SHARE:
            body = {"service_code": plan.code, "kind": "green", "id_number": who["id_number"]}
            self.tally.green += 1
        else:
            body = {"service_code": plan.code, "id_number": who["id_number"], "phone": who["phone"]}
        answer = await self.kiosk.call("POST", f"/queue/centers/{CENTRE}/tickets", json=body, ok=(201, 409, 422))
        if answer.status_code == 201:
            self.tally.issued += 1
        else:
            self.tally.errors.append(f"ticket refused: {answer.text[:120]}")

    async def appointment(self, slot: datetime) -> None:
        """Booked on the public page the day before (here: at the start), checked in at the kiosk at the slot."""
        plan = self.rng.choice(SERVICES[:2])
        who = person(self.rng)
        booked = await self.kiosk.call("POST", f"/queue/public/centers/{CENTRE}/appointments", headers={},
                                       ok=(201, 409, 422), json={"service_code": plan.code,
                                                                 "slot_start": slot.isoformat(),
                                                                 "id_number": who["id_number"], "phone": who["phone"]})
        if booked.status_code != 201:
            return
        await self.sleep_until(slot - timedelta(minutes=self.rng.uniform(0, 10)))
        checked = await self.kiosk.call("POST", f"/queue/appointments/{booked.json()['code']}/check-in",
                                        ok=(200, 201, 409))
        if checked.status_code in (200, 201):
            self.tally.issued += 1
            self.tally.appointments += 1

    async def import_late(self) -> None:
        """Three open cases of the previous system, accepted 30 working days ago with a 20-day limit."""
        handler = next(u for u in _items(await self.admin.call("GET", "/auth/users", params={"center": CENTRE}))
                       if u["username"] == "demo.clerk7")
        accepted = WorkCalendar().subtract_working_days(self.day, 30)
        rows = [{"legacy_no": f"JS-{self.day:%Y%m%d}-{n}", "item_code": "JS-001",
                 "accepted_at": f"{accepted.isoformat()} 10:0{n}", "handler": handler["id"],
                 "applicant": {k: v for k, v in person(self.rng).items() if k != "phone"}} for n in range(3)]
        answer = await self.admin.call("POST", f"/cases/import?center={CENTRE}", json={"cases": rows},
                                       ok=(201, 409), waits=True)
        if answer.status_code == 201:
            self.tally.imported_late = int(answer.json()["overdue"])

    async def office_work(self) -> None:
        """The supervision office: a complaint at 10:30, one overdue finding confirmed into a 警告 at 10:45."""
        for at, act in (((10, 30), self._complaint), ((10, 45), self._confirm)):
            if local(self.day, at) >= self.end:
                return
            await self.sleep_until(local(self.day, at))
            await act()

    async def _complaint(self) -> None:
        await self.kiosk.call("POST", "/monitor/public/complaints", headers={}, ok=(201,), json={
            "center": CENTRE, "category": "工作纪律", "subject": {"window": VACANT_WINDOW},
            "text": f"{VACANT_WINDOW}号窗口工作人员离岗较久，群众等候时间长"})
        self.tally.complaints += 1

    async def _confirm(self) -> None:
        pending = _items(await self.office.call("GET", "/monitor/findings", params={"center": CENTRE,
                                                                                   "status": "pending"}))
        for finding in pending[:1]:
            await self.office.call("POST", f"/monitor/findings/{finding['id']}/confirm", ok=(200, 409),
                                   json={"reason": "经核实，办件超期属实"})
            self.tally.confirmed += 1

    async def supplements(self) -> None:
        """Materials requested at the window come back about an hour later (补正)."""
        while clock.now() < self.end:
            due = [s for s in self.supplemented if s[2] <= clock.now()]
            for entry in due:
                self.supplemented.remove(entry)
                await entry[1].call("POST", f"/cases/cases/{entry[0]}/supplement", ok=(200, 409),
                                    json={"note": "材料已补齐"})
            await self.sleep_until(clock.now() + timedelta(minutes=5))

    async def show_progress(self) -> None:
        span = (self.end - self.started).total_seconds()
        while self.progress:
            done = min(1.0, (clock.now() - self.started).total_seconds() / span)
            bar = "#" * int(done * 30)
            t = self.tally
            sys.stdout.write(f"\r  [{bar:<30}] {clock.now().astimezone(clock.LOCAL_TZ):%H:%M}  tickets {t.issued}"
                             f"  served {t.served}  no-shows {t.no_shows}  cases {t.cases}  ")
            sys.stdout.flush()
            if done >= 1.0:
                sys.stdout.write("\n")
                return
            await asyncio.sleep(0.5)

    async def run(self) -> Tally:
        await self.set_up()
        windows = [await self.window(n, w, i) for i, (n, w) in enumerate(WINDOWS)]
        await self.import_late()
        start = max(clock.now(), local(self.day, OPEN_AM))
        morning = arrivals(self.day, start, self.end, self.rng)
        slots = [local(self.day, (9, 0)) + timedelta(minutes=30 * i) for i in range(5)]
        booked = [s for s in slots if s >= start and s < self.end for _ in range(2)
                  if self.rng.random() < APPOINTMENT_SHARE * 5]
        tasks = [asyncio.create_task(self.arrive(t)) for t in morning]
        tasks += [asyncio.create_task(self.appointment(s)) for s in booked]
        tasks += [asyncio.create_task(w.work()) for w in windows]
        tasks += [asyncio.create_task(self.office_work()), asyncio.create_task(self.supplements())]
        reporter = asyncio.create_task(self.show_progress())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.progress = False
        await reporter
        for result in results:
            if isinstance(result, BaseException):
                self.tally.errors.append(repr(result)[:300])
        for api in (self.admin, self.kiosk, self.office, self.chief, *[a for w in windows for a in w.apis()]):
            await api.close()
        return self.tally


class Window:
    """A window's clerk through the day: signs in at opening, calls, serves, accepts cases, has the service
    rated, breaks for lunch, signs out at closing; its terminal beats meanwhile."""

    def __init__(self, day: Day, number: str, weights: dict[str, int], department: str, terminal: Api, clerk: Api,
                 evaluator: Api) -> None:
        self.day, self.number, self.weights, self.department = day, number, weights, department
        self.terminal, self.clerk, self.evaluator = terminal, clerk, evaluator
        self.path = f"/queue/centers/{CENTRE}/windows/{number}"
        self.went_away = False

    def apis(self) -> tuple[Api, Api, Api]:
        return self.terminal, self.clerk, self.evaluator

    async def beat(self) -> None:
        """Every 45 simulated seconds until the clerk has signed out (work() cancels it): a service that runs
        past the end of the demo keeps its window's heartbeat."""
        while True:
            await self.terminal.call("POST", f"{self.path}/heartbeat", ok=(200, 409))
            await self.day.sleep_until(clock.now() + HEARTBEAT)

    async def work(self) -> None:
        day = self.day
        beating = asyncio.create_task(self.beat())
        try:
            for opens, closes in ((OPEN_AM, CLOSE_AM), (OPEN_PM, CLOSE_PM)):
                session_end = min(local(day.day, closes), day.end)
                if clock.now() >= session_end:
                    continue
                await day.sleep_until(local(day.day, opens))
                await self.clerk.call("POST", f"{self.path}/sign-in", ok=(200, 409))
                while clock.now() < session_end:
                    if self.number == VACANT_WINDOW and not self.went_away and clock.now() >= local(day.day, VACANT_AT):
                        # once, after the ticket in service when 10:05 came: away longer than the vacancy minutes
                        self.went_away = True
                        await self.clerk.call("POST", f"{self.path}/away", json={"message": "去复印材料"})
                        await day.sleep_until(clock.now() + VACANT_FOR)
                        await self.clerk.call("POST", f"{self.path}/back")
                    called = await self.clerk.call("POST", f"{self.path}/call-next", ok=(200, 204, 409))
                    if called.status_code != 200:
                        await day.sleep_until(clock.now() + timedelta(seconds=30))
                        continue
                    await self.serve(called.json())
                await self.clerk.call("POST", f"{self.path}/sign-out")
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def serve(self, ticket: dict[str, Any]) -> None:
        day, tally = self.day, self.day.tally
        tally.called += 1
        tally.waits.append((datetime.fromisoformat(ticket["called_at"])
                            - datetime.fromisoformat(ticket["effective_arrival"])).total_seconds())
        if day.rng.random() < NO_SHOW_SHARE:
            await day.sleep_until(clock.now() + timedelta(minutes=2))
            await self.clerk.call("POST", f"/queue/tickets/{ticket['id']}/skip", ok=(200, 409))
            tally.no_shows += 1
            return
        await self.clerk.call("POST", f"/queue/tickets/{ticket['id']}/start")
        plan = day.services[ticket["service_code"]]
        minutes = plan.minutes * math.exp(day.rng.gauss(0, plan.sigma))
        await day.sleep_until(clock.now() + timedelta(minutes=minutes))
        # a clerk accepts the cases of their own department (the other services' tickets are advice and forms)
        if plan.item is not None and plan.department == self.department and day.rng.random() < plan.case_share:
            await self.accept(plan, ticket)
        finished = await self.clerk.call("POST", f"/queue/tickets/{ticket['id']}/finish")
        tally.served += 1
        done = finished.json()
        tally.services.append((datetime.fromisoformat(done["ended_at"])
                               - datetime.fromisoformat(done["started_at"])).total_seconds())
        if day.rng.random() < RATED_SHARE:
            rating = day.rng.choices([r for r, _ in RATINGS], weights=[w for _, w in RATINGS])[0]
            rated = await self.evaluator.call("POST", f"/queue/tickets/{ticket['id']}/evaluation",
                                              json={"rating": rating}, ok=(201, 409))
            if rated.status_code == 201:
                tally.ratings[rating] += 1

    async def accept(self, plan: ServicePlan, ticket: dict[str, Any]) -> None:
        day, tally = self.day, self.day.tally
        assert plan.item is not None
        who = person(day.rng)
        accepted = await self.clerk.call("POST", "/cases/cases", ok=(201, 403, 422), json={
            "center": CENTRE, "item_code": plan.item.code, "ticket_id": ticket["id"],
            "applicant": {"name": who["name"], "id_number": who["id_number"], "phone": who["phone"]},
            "materials": list(plan.item.materials)})
        if accepted.status_code != 201:
            tally.errors.append(f"case refused at window {self.number}: {accepted.text[:160]}")
            return
        case_no = accepted.json()["case_no"]
        tally.cases += 1
        if plan.item.kind == "immediate":
            await self.clerk.call("POST", f"/cases/cases/{case_no}/complete", json={"note": "当场办结"}, ok=(200, 409))
            tally.completed += 1
        elif not day.refusal_done and plan.code == "HJ":
            day.refusal_done = True
            await self.clerk.call("POST", f"/cases/cases/{case_no}/propose-refusal", ok=(200, 409), json={
                "reason": "申请人不符合迁入条件", "legal_basis": "《户口登记条例》第十条"})
            await day.chief.call("POST", f"/cases/cases/{case_no}/approve-refusal", ok=(200, 403, 409),
                                 json={"note": "同意不予受理"})
            tally.refused += 1
        elif day.rng.random() < SUPPLEMENT_SHARE:
            await self.clerk.call("POST", f"/cases/cases/{case_no}/request-supplement", ok=(200, 409), json={
                "missing_materials": ["房屋产权证明"], "reason": "缺少住所证明材料"})
            tally.supplements += 1
            day.supplemented.append((case_no, self.clerk, clock.now() + timedelta(hours=1)))


def _items(answer: httpx.Response) -> list[dict[str, Any]]:
    body = answer.json()
    return list(body["items"] if isinstance(body, dict) else body)


# --- the run: the hall, the day, the summary --------------------------------------------------------------


async def _kpis(api: Api, day: date) -> dict[str, Any]:
    answer = await api.call("GET", "/monitor/kpis", params={"center": CENTRE, "from": day.isoformat(),
                                                            "to": day.isoformat()})
    body: dict[str, Any] = answer.json()
    return body


async def tickets_before(gateway: str, admin_token: str, day: date) -> int:
    """The day's tickets an earlier demo left in this var/ (its figures then add to this run's)."""
    api = Api(gateway, "127.0.0.1", {"Authorization": f"Bearer {admin_token}"})
    try:
        answer = await api.client.get("/monitor/kpis", headers=api.headers, params={
            "center": CENTRE, "from": day.isoformat(), "to": day.isoformat()})
        hall = answer.json().get("hall") if answer.status_code == 200 else None
        return int(hall[0]["tickets"]) if hall else 0
    finally:
        await api.close()


async def report(gateway: str, admin_token: str, day: date, tally: Tally, *, settle_s: float) -> dict[str, Any]:
    """What the driver did beside what the platform reports of the day (after `settle_s` for the events)."""
    await asyncio.sleep(settle_s)
    api = Api(gateway, "127.0.0.1", {"Authorization": f"Bearer {admin_token}"})
    try:
        kpis = await _kpis(api, day)
        alerts = _items(await api.call("GET", "/monitor/alerts", params={"center": CENTRE, "limit": 200}))
        sanctions = _items(await api.call("GET", "/monitor/sanctions", params={"center": CENTRE}))
        deliveries = (await api.call("GET", "/notify/deliveries", params={"center_id": CENTRE, "limit": 500})).json()
    finally:
        await api.close()
    hall = kpis["hall"][0] if kpis["hall"] else {}
    cases = kpis["rows"][0] if kpis["rows"] else {}
    ratings = sum(tally.ratings.values())
    satisfied = sum(n for r, n in tally.ratings.items() if r >= 3)
    return {
        "day": day.isoformat(),
        "driver": {"tickets": tally.issued, "green": tally.green, "appointments": tally.appointments,
                   "called": tally.called, "no_shows": tally.no_shows, "served": tally.served,
                   "wait_p50_s": percentile(tally.waits, 0.5), "wait_p90_s": percentile(tally.waits, 0.9),
                   "service_p50_s": percentile(tally.services, 0.5), "ratings": ratings, "satisfied": satisfied,
                   "cases": tally.cases, "completed": tally.completed, "supplements": tally.supplements,
                   "refused": tally.refused, "imported_late": tally.imported_late, "complaints": tally.complaints,
                   "confirmed": tally.confirmed,
                   "errors": tally.errors},
        "kpis": {"hall": hall, "cases": cases},
        "alerts": dict(Counter(f"{a['kind']}/{a['level']}" for a in alerts)),
        "alert_texts": [f"{a['kind']}: {a.get('text', '')}" for a in alerts],
        "sanctions": dict(Counter(s["level"] for s in sanctions)),
        "deliveries": dict(Counter(f"{d['channel']}/{d['status']}" for d in deliveries)),
    }


def print_summary(summary: dict[str, Any]) -> None:
    d, hall, cases = summary["driver"], summary["kpis"]["hall"], summary["kpis"]["cases"]

    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value / 60:.1f} min"

    print(f"\n  {summary['day']} at {CENTRE_NAME} — what the demo did | what the monitor reports")
    rows = (("tickets", d["tickets"], hall.get("tickets")), ("called", d["called"], hall.get("called")),
            ("no-shows", d["no_shows"], hall.get("no_shows")),
            ("wait p50", minutes(d["wait_p50_s"]), minutes(hall.get("wait_p50_s"))),
            ("wait p90", minutes(d["wait_p90_s"]), minutes(hall.get("wait_p90_s"))),
            ("service p50", minutes(d["service_p50_s"]), minutes(hall.get("service_p50_s"))),
            ("ratings", d["ratings"], hall.get("ratings")), ("satisfied (3-5)", d["satisfied"], hall.get("satisfied")),
            ("cases accepted", d["cases"], cases.get("accepted")))
    for name, mine, theirs in rows:
        print(f"    {name:<16} {mine!s:>10} | {theirs!s:<10}")
    print(f"    green channel {d['green']}, appointments {d['appointments']}, supplements {d['supplements']}, "
          f"refused {d['refused']}, imported late {d['imported_late']}, complaints {d['complaints']}")
    print(f"    alerts {summary['alerts'] or '—'}")
    print(f"    sanctions {summary['sanctions'] or '—'}   deliveries {summary['deliveries'] or '—'}")
    if summary.get("tickets_before"):
        print(f"    (the monitor's figures include {summary['tickets_before']} tickets of an earlier demo of the same day "
              f"in this var/: remove var/ for a clean replay)")
    if d["errors"]:
        print(f"    {len(d['errors'])} problems, the first: {d['errors'][0]}")


def _launch(var: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    (var / "log").mkdir(parents=True, exist_ok=True)
    log = open(var / "log" / "demo-launcher.log", "ab")  # noqa: SIM115 - the child's, closed with it
    return subprocess.Popen([sys.executable, "-m", "shared.devinfra.run"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _wait_healthy(gateway: str, launcher: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if launcher.poll() is not None:
            raise RuntimeError(f"the hall did not start (exit {launcher.returncode}): see var/log/demo-launcher.log")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{gateway}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the hall was not healthy in {timeout:.0f} s")


def _admin_token(var: Path, gateway: str) -> str:
    stored = json.loads((var / "secrets" / "demo-admin.json").read_text())
    answer = httpx.post(f"{gateway}/api/auth/login", json=stored, timeout=15)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=150, help="simulated seconds per real second")
    parser.add_argument("--hours", type=float, default=None, help="play only this many hours from 09:00")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--summary-json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    var = Path(env.get("HALL_DEV_VAR_DIR", "var")).resolve()
    gateway = f"http://127.0.0.1:{env.get('HALL_DEV_GATEWAY_PORT', '8000')}"
    day = previous_working_day(clock.wall_now().astimezone(clock.LOCAL_TZ).date())
    real_start, sim_start = clock.wall_now(), local(day, (7, 30))
    env |= {"HALL_CLOCK_MODE": "simulated", "HALL_CLOCK_SIM_REAL_START": real_start.isoformat(),
            "HALL_CLOCK_SIM_START": sim_start.isoformat(), "HALL_CLOCK_SPEED": str(args.speed)}
    clock.set_clock(clock.SimulatedClock(real_start, sim_start, args.speed))
    end = local(day, OPEN_AM) + timedelta(hours=args.hours) if args.hours else local(day, (17, 45))
    print(f"make demo: {day} at {CENTRE_NAME}, {args.speed:g}x ({(end - sim_start) / timedelta(seconds=args.speed)}"
          f" of real time from 07:30 to {end.astimezone(clock.LOCAL_TZ):%H:%M})", flush=True)
    launcher = _launch(var, env)
    try:
        _wait_healthy(gateway, launcher)
        token = _admin_token(var, gateway)
        before = asyncio.run(tickets_before(gateway, token, day))
        tally = asyncio.run(Day(gateway, token, day, end, args.seed, progress=True).run())
        summary = asyncio.run(report(gateway, token, day, tally, settle_s=3)) | {"tickets_before": before}
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(90)
        except subprocess.TimeoutExpired:
            launcher.kill()
    print_summary(summary)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0 if not summary["driver"]["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
