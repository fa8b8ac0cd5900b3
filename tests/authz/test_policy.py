"""Every route of every service held to tests/authz/policy.yaml (issue 18 item 3): a service's routes are
exactly the policy's rows, and each route answers every role, no token, an expired token and a token of
another centre, department or window as the policy says.

A new route needs its row in policy.yaml and, when its sample needs more than the placeholders there, a
value in its service's seed function here (`SEEDS`): a fixed one in `Seeds.values` (made once through the
service's own API), or a per-request one in `Seeds.fresh` (a refresh token can be spent only once).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from shared import clock
from shared.auth import FEED_TOKEN_PARAM, Role, mint_token
from shared.events.catalog import CenterUpserted, UserUpserted, WindowUpserted
from shared.events.envelope import Envelope

POLICY_FILE = Path(__file__).with_name("policy.yaml")
POLICY_DIR = Path(__file__).with_name("policy.d")
SERVICES = ("queue", "cases", "monitor", "notify", "identity", "terminals")
BOUNDS = ("center", "department", "window")
SAMPLE_KEYS = {"path", "query", "json", "content", "content_base64", "headers", "ok"}
# FastAPI's own pages: tokenless at the edge by issue 18 item 2, and no route of the service's
FASTAPI_OWN = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

CENTER, OTHER_CENTER = "320102", "320104"
DEPARTMENT, OTHER_DEPARTMENT = "D01", "D02"
WINDOW, OTHER_WINDOW = "W03", "W04"
PASSWORD = "correct horse battery"
EXPIRED = timedelta(minutes=-1)
PROBLEM_JSON = "application/problem+json"

# what each role's token carries besides its centre, as the identity service issues them: devices their
# device id (evaluators and terminals their window), clerks and chief representatives their department
# and the window they signed in at. A role added to shared.auth.Role must be added here.
CLAIMS: dict[Role, dict[str, str]] = {
    Role.KIOSK: {"device": "kiosk-1"},
    Role.DISPLAY: {"device": "display-1"},
    Role.EVALUATOR: {"device": "evaluator-1", "window": WINDOW},
    Role.TERMINAL: {"device": "terminal-1", "window": WINDOW},
    Role.CLERK: {"department": DEPARTMENT, "window": WINDOW},
    Role.CHIEF_REP: {"department": DEPARTMENT, "window": WINDOW},
    Role.HALL_MANAGER: {},
    Role.SUPERVISOR: {},
    Role.CENTER_ADMIN: {},
    Role.SYSTEM_ADMIN: {},  # centres "*"
}


# --- the policy ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One row of policy.yaml."""

    service: str
    route: str  # "GET /centers/{center_id}"
    public: bool
    roles: frozenset[Role]  # a public route: the roles whose bearer token it takes (none: it reads no token)
    bound: frozenset[str]
    feed: bool
    sample: dict[str, Any]

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.route.split(" ", 1)[1]

    def __str__(self) -> str:
        return f"{self.service} {self.route}"


class _PolicyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one: a row would silently vanish)."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                self.duplicates.append(f"{key}: listed twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    loader = _PolicyLoader(path.read_text(encoding="utf-8"))
    loader.duplicates = []
    try:
        raw = loader.get_single_data() or {}
    finally:
        loader.dispose()
    return raw, [f"{path.name}: {d}" for d in loader.duplicates]


def load_policy() -> tuple[dict[str, dict[str, Rule]], list[str]]:
    """The rules per service and route, and what is wrong with the files (empty when they are well formed):
    policy.yaml, then each policy.d/*.yaml (a part of a service's routes kept beside the code it covers, in
    the same format); a route listed in two files is an error, like a key given twice."""
    rules: dict[str, dict[str, Rule]] = {}
    errors: list[str] = []
    where: dict[tuple[str, str], str] = {}
    for path in [POLICY_FILE, *sorted(POLICY_DIR.glob("*.yaml"))]:
        raw, duplicates = _load_file(path)
        errors.extend(duplicates)
        for service, rows in raw.items():
            if service not in SERVICES:
                errors.append(f"{path.name}: {service}: not a service (one of {', '.join(SERVICES)})")
                continue
            for route, row in (rows or {}).items():
                if (service, route) in where:
                    errors.append(f"{service} {route}: listed in {where[service, route]} and {path.name}")
                    continue
                where[service, route] = path.name
                rule, problems = _rule(service, route, row or {})
                errors.extend(f"{path.name}: {service} {route}: {p}" for p in problems)
                if rule is not None:
                    rules.setdefault(service, {})[route] = rule
    return rules, errors


def _rule(service: str, route: str, row: dict[str, Any]) -> tuple[Rule | None, list[str]]:
    problems = []
    if not re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE) /\S*", route):
        problems.append("the key must be '<METHOD> <path>'")
    unknown = set(row) - {"public", "bearer", "roles", "bound", "feed", "sample"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    public = row.get("public", False) is True
    roles: frozenset[Role] = frozenset()
    bound: frozenset[str] = frozenset()
    if public:
        if "roles" in row:
            problems.append("a public route has no roles (bearer: the roles whose token it reads, if any)")
        if "bearer" in row:
            roles, problem = _roles(row["bearer"], "bearer")
            problems.extend(problem)
        elif row.get("bound", "none") != "none":
            problems.append("a public route that reads no token (no bearer) has no bound")
    elif "bearer" in row:
        problems.append("bearer is for public routes (the others have roles)")
    else:
        roles, problem = _roles(row.get("roles"), "roles")
        problems.extend(problem)
    if not public and "bound" not in row:
        problems.append("bound is missing: center, department, window or none")
    kind = row.get("bound", "none")
    if kind not in (*BOUNDS, "none"):
        problems.append(f"bound must be one of {', '.join(BOUNDS)}, none")
    elif kind != "none":
        bound = frozenset({"center", kind})  # a department and a window are each in a centre
        for claim in ("department", "window"):
            if claim in bound and not any(claim in CLAIMS[r] for r in roles):
                problems.append(f"bound: {claim}, but no admitted role carries a {claim}")
    sample = row.get("sample") or {}
    if set(sample) - SAMPLE_KEYS:
        problems.append(f"sample: unknown keys {sorted(set(sample) - SAMPLE_KEYS)} "
                        f"(known: {sorted(SAMPLE_KEYS)})")
    if problems:
        return None, problems
    return Rule(service, route, public, roles, bound, row.get("feed", False) is True, sample), []


def _roles(given: Any, key: str) -> tuple[frozenset[Role], list[str]]:
    if given == "any":
        return frozenset(Role), []
    if isinstance(given, list) and given:
        try:
            return frozenset(Role(r) for r in given), []
        except ValueError as exc:
            return frozenset(), [f"{key}: {exc}"]
    return frozenset(), [f"{key} must be a list of shared.auth.Role values or 'any'"]


def service_routes(app: FastAPI) -> set[str]:
    """'<METHOD> <path>' of every route in the app's OpenAPI document, and of those it hides from it."""
    routes = {f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops}
    # FastAPI keeps included routers as branches: iter_route_contexts walks them as the app routes requests
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            continue  # in the document already
        if route.path in FASTAPI_OWN:
            continue
        routes |= {f"{m} {route.path}" for m in (route.methods or {"ANY"}) if m != "HEAD"}
    return routes


def _app_without_database(service: str) -> FastAPI:
    config = importlib.import_module(f"services.{service}.config")
    main = importlib.import_module(f"services.{service}.main")
    settings = config.Settings(database_url="postgresql+asyncpg://unused@127.0.0.1:1/unused",
                               migrate_on_start=False)
    return main.create_app(settings)  # nothing connects before its lifespan starts


# --- seed data and sample requests -------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{(\w+)\}")


class MissingSeed(LookupError):
    """A sample names a placeholder its service's seed does not give."""


@dataclass
class Seeds:
    """What a sample's {placeholders} stand for: `values` made once (seeded through the service's API),
    `fresh` made anew for each request that uses them; `{n}` is unique per request. `tokens` may give a
    role's valid token itself, for a service that checks a token against its own records (identity: a
    terminal's against its live key); else the test mints one."""

    values: dict[str, Any]
    fresh: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)
    tokens: Callable[[Role, str, dict[str, str]], Awaitable[str | None]] | None = None
    requests: int = 0

    async def call(self, rule: Rule) -> Call:
        self.requests += 1
        known: dict[str, Any] = {"n": self.requests}

        async def value(name: str) -> Any:
            if name not in known:
                if name in self.fresh:
                    known[name] = await self.fresh[name]()
                elif name in self.values:
                    known[name] = self.values[name]
                else:
                    raise MissingSeed(f"{rule}: sample placeholder {{{name}}} has no value; add it to the "
                                      f"{rule.service} seed in tests/authz/test_policy.py")
            return known[name]

        async def fill(template: Any) -> Any:
            if isinstance(template, str):
                if whole := PLACEHOLDER.fullmatch(template):
                    return await value(whole[1])
                for name in PLACEHOLDER.findall(template):
                    await value(name)
                return PLACEHOLDER.sub(lambda m: str(known[m[1]]), template)
            if isinstance(template, dict):
                return {k: await fill(v) for k, v in template.items()}
            if isinstance(template, list):
                return [await fill(v) for v in template]
            return template

        sample = rule.sample
        path_params = await fill(sample.get("path", {}))
        headers = {k: str(v) for k, v in (await fill(sample.get("headers", {}))).items()}
        body = None
        if "json" in sample:
            body = json.dumps(await fill(sample["json"]), ensure_ascii=False).encode()
            headers.setdefault("content-type", "application/json")
        elif "content" in sample:
            body = str(await fill(sample["content"])).encode()
        elif "content_base64" in sample:  # a binary body (an image)
            body = base64.b64decode(sample["content_base64"])
        return Call(method=rule.method, path=PLACEHOLDER.sub(lambda m: str(path_params[m[1]]), rule.path),
                    query=[(k, str(v)) for k, v in (await fill(sample.get("query", {}))).items()],
                    headers=headers, body=body, ok=tuple(sample.get("ok", ())))


@dataclass
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None = None
    ok: tuple[int, ...] = ()  # empty: any 2xx

    def succeeded(self, status: int) -> bool:
        return status in self.ok if self.ok else 200 <= status < 300


def _common() -> dict[str, Any]:
    return {"center": CENTER, "other_center": OTHER_CENTER, "department": DEPARTMENT, "window": WINDOW}


async def seed_queue(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    r = await client.post("/centers", json={"id": CENTER, "name": "玄武区政务服务中心"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/centers/{CENTER}/services", json={"code": "HJ", "name": "户籍", "prefix": "A"},
                          headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/centers/{CENTER}/windows", headers=admin, json={
        "number": WINDOW, "name": "3 号窗口", "services": [{"service_code": "HJ", "weight": 1}]})
    assert r.status_code == 201, r.text
    # the policy's clerk signed in at WINDOW, with a ticket called there (for start and finish)
    key = os.environ["GATEWAY_JWT_PRIVATE_KEY"]
    clerk = {"Authorization": "Bearer " + mint_token(key, subject="policy-clerk", role="clerk", centers=[CENTER],
                                                     **CLAIMS[Role.CLERK])}
    kiosk = {"Authorization": "Bearer " + mint_token(key, subject="policy-kiosk", role="kiosk", centers=[CENTER])}
    tickets, codes = [], []
    for _ in range(3):
        r = await client.post(f"/centers/{CENTER}/tickets", json={"service_code": "HJ"}, headers=kiosk)
        assert r.status_code == 201, r.text
        tickets.append(r.json()["id"])
        codes.append(r.json()["lookup_code"])
    for path in ("sign-in", "call-next"):
        r = await client.post(f"/centers/{CENTER}/windows/{WINDOW}/{path}", headers=clerk)
        assert r.status_code == 200, r.text
    # appointments: a service with slots every day 09:00-17:00, booked at 09:30 today (the clock's 09:00:
    # within check-in's -60/+20 minutes); each check-in and cancel sample spends an appointment of its own
    slots = [{"weekday": d, "start": "09:00", "end": "17:00", "minutes": 30, "capacity": 1000} for d in range(1, 8)]
    r = await client.post(f"/centers/{CENTER}/services", headers=admin,
                          json={"code": "YY", "name": "预约业务", "prefix": "Y", "slots": slots})
    assert r.status_code == 201, r.text
    slot = clock.now().astimezone(clock.LOCAL_TZ).replace(hour=9, minute=30, second=0, microsecond=0)
    booking = {"service_code": "YY", "slot_start": slot.isoformat()}
    phone = "13800138000"

    async def fresh_appointment() -> str:
        r = await client.post(f"/centers/{CENTER}/appointments", json=booking, headers=kiosk)
        assert r.status_code == 201, r.text
        return r.json()["code"]

    async def fresh_online_appointment() -> str:
        r = await client.post(f"/public/centers/{CENTER}/appointments", json={**booking, "phone": phone})
        assert r.status_code == 201, r.text
        return r.json()["code"]

    prefixes = (a + b for a in string.ascii_uppercase for b in string.ascii_uppercase)

    async def fresh_prefix() -> str:
        return next(prefixes)  # every created service issues its own letters

    return Seeds({**_common(), "service": "HJ", "called_ticket": tickets[0],
                  "waiting_ticket": tickets[1], "waiting_ticket_code": codes[1],
                  "appointment_service": "YY", "slot": slot.isoformat(), "slot_date": slot.date().isoformat(),
                  "booking_phone": phone},
                 fresh={"fresh_prefix": fresh_prefix, "fresh_appointment": fresh_appointment,
                        "fresh_online_appointment": fresh_online_appointment})


async def seed_read_copy(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    """cases, monitor, notify: the centre as their consumer copies it from center.upserted (no API writes a
    read copy), and two dead letters as the consumer writes them (one to replay, one to discard)."""
    consumers = importlib.import_module(f"services.{service}.consumers").CONSUMERS
    handler = next(spec for spec in consumers if spec.name == "centers").handlers["center.upserted"]

    def event(sequence: int, address: str | None = None) -> Envelope:
        payload = CenterUpserted(id=CENTER, name="玄武区政务服务中心", address=address)
        return Envelope.wrap("queue", payload, subject=CENTER, center_id=CENTER).model_copy(
            update={"sequence": sequence})

    async with client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
        await handler(session, event(1))
    values = _common()
    for name, envelope in (("replayable_dead_letter", event(2, "北京东路41号").model_dump_json()),
                           ("discardable_dead_letter", json.dumps({"malformed": True}))):
        rows = await client.db.fetch(  # type: ignore[attr-defined]
            "INSERT INTO dead_letters (consumer, key, event_id, kind, envelope, error, created_at) "
            "VALUES ($1, $2, gen_random_uuid(), 'poison', $3::jsonb, 'ValueError: a bug, since fixed', $4) "
            "RETURNING id", f"{service}.centers", f"{CENTER}-{name}", envelope, clock.now())
        values[name] = rows[0]["id"]
    return Seeds(values)


async def seed_cases(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    """The centre copy and dead letters, then the department {department} with an item, and a case accepted
    by the policy's clerk for each action row that needs one (in progress: a move the state does not allow
    answers 409 to an admitted caller, still past the role and department checks)."""
    seeds = await seed_read_copy(service, client, admin)
    r = await client.post("/departments", headers=admin, json={"center_id": CENTER, "code": DEPARTMENT,
                                                                "name": "区市场监督管理局"})
    assert r.status_code == 201, r.text
    r = await client.post("/items", headers=admin, json={
        "center_id": CENTER, "code": "CI1", "name": "食品经营许可", "department": DEPARTMENT, "kind": "promised",
        "legal_limit_days": 20, "promised_limit_days": 5})
    assert r.status_code == 201, r.text
    r = await client.put(f"/items/{CENTER}/CI1/files/form.pdf", content=b"%PDF-1.4\n%%EOF\n",  # policy.d/cases_intake
                         headers=admin | {"content-type": "application/pdf"})
    assert r.status_code == 201, r.text
    key = os.environ["GATEWAY_JWT_PRIVATE_KEY"]
    clerk = {"Authorization": "Bearer " + mint_token(key, subject="policy-clerk", role="clerk", centers=[CENTER],
                                                     **CLAIMS[Role.CLERK])}
    body = {"center": CENTER, "item_code": "CI1",
            "applicant": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}}

    async def fresh_case() -> str:
        r = await client.post("/cases", json=body, headers=clerk)
        assert r.status_code == 201, r.text
        return str(r.json()["case_no"])

    r = await client.post("/cases", json=body, headers=clerk)
    assert r.status_code == 201, r.text
    seeds.values.update({"case_no": r.json()["case_no"], "lookup_code": r.json()["lookup_code"],
                         "item": "CI1"})
    seeds.fresh["fresh_case"] = fresh_case
    seeds.values.update(await seed_joint_cases(client, admin, clerk, body))
    await seed_registers(client, clerk, body, seeds)
    return seeds


async def seed_joint_cases(client: httpx.AsyncClient, admin: dict[str, str], clerk: dict[str, str],
                           body: dict[str, Any]) -> dict[str, Any]:
    """联办件 (policy.d/cases_joint.yaml): {window} flagged for joint approval; {joint_case}, {department}'s,
    with a sub-task for D03; {asked_case}, D02's, whose sub-task {asked_subtask} asks {department}."""
    handler = importlib.import_module("services.cases.consumers").CONSUMERS[0].handlers["window.upserted"]
    window = WindowUpserted(center_id=CENTER, number=WINDOW, name="3 号窗口", services=[], joint_approval=True)
    async with client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
        await handler(session, Envelope.wrap("queue", window, subject=WINDOW, center_id=CENTER).model_copy(
            update={"sequence": 1}))
    for code in ("D02", "D03", "D04"):
        r = await client.post("/departments", headers=admin, json={"center_id": CENTER, "code": code, "name": code})
        assert r.status_code == 201, r.text
    key = os.environ["GATEWAY_JWT_PRIVATE_KEY"]
    other = {"Authorization": "Bearer " + mint_token(key, subject="policy-clerk-d02", role="clerk",
                                                     centers=[CENTER], department="D02", window=WINDOW)}
    cases = []
    for code, department, who, asked in (("JI1", DEPARTMENT, clerk, "D03"), ("JI2", "D02", other, DEPARTMENT)):
        r = await client.post("/items", headers=admin, json={
            "center_id": CENTER, "code": code, "name": "联办事项", "department": department, "kind": "joint",
            "legal_limit_days": 20, "promised_limit_days": 10})
        assert r.status_code == 201, r.text
        r = await client.post("/cases", json={**body, "item_code": code}, headers=who)
        assert r.status_code == 201, r.text
        case_no = r.json()["case_no"]
        r = await client.post(f"/cases/{case_no}/subtasks", json={"department": asked, "limit_days": 3},
                              headers=who)
        assert r.status_code == 201, r.text
        cases.append((case_no, r.json()["id"]))
    return {"joint_case": cases[0][0], "asked_case": cases[1][0], "asked_subtask": cases[1][1],
            "review_held_at": clock.now().isoformat()}


async def seed_registers(client: httpx.AsyncClient, clerk: dict[str, str], body: dict[str, Any],
                         seeds: Seeds) -> None:
    """Registers (policy.d/cases_registers.yaml): {notice_no}; the policy's clerk as a staff copy, so that it can
    be the agent of {agency_case} and of each {fresh_agency_case} (completed); {fresh_inquiry}, pending, its own."""
    handler = importlib.import_module("services.cases.consumers").CONSUMERS[1].handlers["user.upserted"]
    user = UserUpserted(id="policy-clerk", display_name="策略代办员", role="clerk", centers=[CENTER],
                        department=DEPARTMENT)
    async with client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
        await handler(session, Envelope.wrap("identity", user, subject=user.id, center_id=None).model_copy(
            update={"sequence": 1}))
    r = await client.post("/notices/incomplete", headers=clerk, json={
        "center": CENTER, "item_code": "CI1", "applicant": body["applicant"], "missing": ["营业执照副本"]})
    assert r.status_code == 201, r.text
    agency = {**body, "source": "agent", "agent": "policy-clerk", "mandate": {
        "mandator": "张三", "reference": "WT-1", "signed_on": clock.local_date(clock.now()).isoformat(), "scope": "代办"}}

    async def agency_case(complete: bool = False) -> str:
        r = await client.post("/cases", json=agency, headers=clerk)
        assert r.status_code == 201, r.text
        case_no = str(r.json()["case_no"])
        if complete:
            r = await client.post(f"/cases/{case_no}/complete", json={}, headers=clerk)
            assert r.status_code == 200, r.text
        return case_no

    async def fresh_inquiry() -> int:
        r = await client.post("/inquiries", headers=clerk, json={
            "center": CENTER, "channel": "on_site", "question": "在哪里取号？",
            "promised_reply_at": (clock.now() + timedelta(days=1)).isoformat()})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    seeds.values.update({"notice_no": r.json()["notice_no"], "agency_case": await agency_case()})
    seeds.fresh.update({"fresh_agency_case": lambda: agency_case(complete=True), "fresh_inquiry": fresh_inquiry})


PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


async def seed_nothing(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    """The terminals' pages: no data of their own (a page's script calls the other services' APIs)."""
    return Seeds(values={})


async def seed_identity(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await client.post(path, json=body, headers=admin)
        assert r.status_code == 201, r.text
        return r.json()

    def clerk(username: str) -> dict[str, Any]:
        return {"username": username, "password": PASSWORD, "display_name": "张三", "role": "clerk",
                "centers": [CENTER], "department": DEPARTMENT}

    await created("/users", clerk("policy.login"))  # signs in; never changed by a sample
    managed = await created("/users", clerk("policy.managed"))  # the one the admin samples change
    pictured = await created("/users", clerk("policy.pictured"))  # has a photo; never changed by a sample
    photo = await client.put(f"/users/{pictured['id']}/photo", content=PNG,
                             headers=admin | {"content-type": "image/png"})
    assert photo.status_code == 200, photo.text
    device = await created("/device-keys", {"role": "kiosk", "center_id": CENTER, "label": "一楼取号机"})
    revocable = await created("/device-keys", {"role": "kiosk", "center_id": CENTER, "label": "二楼取号机"})

    async def fresh_refresh_token() -> str:
        r = await client.post("/login", json={"username": "policy.login", "password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()["refresh_token"]

    terminals: dict[tuple[str, str], str] = {}

    async def terminal_token(role: Role, center: str, claims: dict[str, str]) -> str | None:
        """A window terminal's token as the service issues it: a sign-in there checks it against the key."""
        if role != Role.TERMINAL:
            return None
        where = (center, claims["window"])
        if where not in terminals:
            key = await created("/device-keys", {"role": "terminal", "center_id": center, "window": where[1],
                                                 "label": f"{where[1]} 号窗口终端"})
            r = await client.post("/token", json={"key": key["key"]})
            assert r.status_code == 200, r.text
            terminals[where] = r.json()["access_token"]
        return terminals[where]

    return Seeds({**_common(), "login_username": "policy.login", "password": PASSWORD,
                  "managed_user": managed["id"], "pictured_user": pictured["id"], "device_key": device["key"],
                  "revocable_key": revocable["id"]},
                 fresh={"fresh_refresh_token": fresh_refresh_token}, tokens=terminal_token)


async def seed_monitor(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    """The read copies' seed, and the supervision records of tests/authz/seed_monitor.py."""
    from tests.authz.seed_monitor import seed_monitor as supervision

    seeds = await seed_read_copy(service, client, admin)
    values, fresh = await supervision(client, CENTER, DEPARTMENT)
    return Seeds({**seeds.values, **values}, fresh={**seeds.fresh, **fresh})


async def seed_notify(service: str, client: httpx.AsyncClient, admin: dict[str, str]) -> Seeds:
    """The read copies' seed, and the recipients and subscriptions of tests/authz/seed_notify.py."""
    from tests.authz.seed_notify import seed_notify as recipients
    from tests.authz.seed_notify_deliveries import seed_deliveries

    seeds = await seed_read_copy(service, client, admin)
    values, fresh = await recipients(client, admin, CENTER)
    dead, fresh_dead = await seed_deliveries(client, CENTER)
    return Seeds({**seeds.values, **values, **dead}, fresh={**seeds.fresh, **fresh, **fresh_dead})


SEEDS: dict[str, Callable[[str, httpx.AsyncClient, dict[str, str]], Awaitable[Seeds]]] = {
    "queue": seed_queue, "cases": seed_cases, "monitor": seed_monitor, "notify": seed_notify,
    "identity": seed_identity, "terminals": seed_nothing,
}


# --- calling a route ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def problem(self) -> dict[str, Any]:
        if not self.content_type.startswith(PROBLEM_JSON):
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def __str__(self) -> str:
        problem = self.problem
        if problem:
            return f"{self.status} {problem.get('code')} ({problem.get('detail')})"
        return f"{self.status} {self.content_type or 'no content type'} {self.body[:120]!r}"


async def _over_asgi(app: FastAPI, call: Call, query: list[tuple[str, str]],
                     headers: dict[str, str]) -> Answer:
    """Call the app over raw ASGI and hang up once a stream starts. Not through httpx's ASGITransport: it
    waits for the end of a stream (a feed, or any streaming route, marked `feed:` or not, would hang the
    test), and its log line of the URL would hold a ?access_token= (the suite's secret scan fails the run on
    it). Any other answer is read whole."""
    done = asyncio.Event()
    hang_up = asyncio.Event()
    requested = False
    status, content_type, body = 0, "", bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": call.body or b"", "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            content_type = dict(message.get("headers") or []).get(b"content-type", b"").decode()
            if content_type.startswith("text/event-stream"):
                done.set()
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    raw_headers = [(b"host", b"test"), *((k.lower().encode(), v.encode()) for k, v in headers.items())]
    if call.body is not None:
        raw_headers.append((b"content-length", str(len(call.body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": call.method,
             "scheme": "http", "path": call.path, "raw_path": call.path.encode(), "root_path": "",
             "query_string": urlencode(query).encode(), "client": ("127.0.0.1", 50000),
             "server": ("test", 80), "headers": raw_headers}
    task = asyncio.create_task(app(scope, receive, send))
    answered = asyncio.create_task(done.wait())
    await asyncio.wait({task, answered}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    hang_up.set()
    if not done.is_set():
        task.cancel()
        answered.cancel()
        status, content_type, body = 0, "", bytearray(b"no answer within 10 s")
    try:
        async with asyncio.timeout(10):
            await task
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - a crash after its 500 answer is that answer
        pass
    return Answer(status, content_type, bytes(body))


class Checker:
    """Calls one service's routes and collects every answer that differs from the policy."""

    def __init__(self, client: httpx.AsyncClient, tokens: Any) -> None:
        self.client = client
        self.tokens = tokens
        self.seeds = Seeds({})
        self.mismatches: list[str] = []

    async def token(self, role: Role, *, expired: bool = False, center: str = CENTER, **override: str) -> str:
        """A token of `role` at `center` with the role's claims (CLAIMS) changed by `override`."""
        claims = {**CLAIMS[role], **override}
        if not expired and self.seeds.tokens is not None:
            if (own := await self.seeds.tokens(role, center, claims)) is not None:
                return own
        centers = ["*"] if role == Role.SYSTEM_ADMIN else [center]
        return self.tokens.mint(role.value, centers, ttl=EXPIRED if expired else timedelta(minutes=15),
                                subject=f"policy-{role.value}", **claims)

    async def send(self, rule: Rule, token: str | None, *, via_query: bool = False,
                   query: list[tuple[str, str]] | None = None) -> tuple[Call, Answer]:
        call = await self.seeds.call(rule)
        headers = dict(call.headers)
        params = list(call.query if query is None else query)
        if token is not None and via_query:
            params.append((FEED_TOKEN_PARAM, token))
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return call, await _over_asgi(self.client.app, call, params, headers)  # type: ignore[attr-defined]

    async def expect_ok(self, rule: Rule, who: str, token: str | None, **how: Any) -> None:
        call, answer = await self.send(rule, token, **how)
        if not call.succeeded(answer.status):
            want = " or ".join(map(str, call.ok)) if call.ok else "2xx"
            self.mismatches.append(f"{rule} as {who}: admitted, wanted {want}, got {answer}")

    async def expect_refused(self, rule: Rule, who: str, token: str | None, status: int,
                             code: str | None = None, **how: Any) -> None:
        _, answer = await self.send(rule, token, **how)
        wanted = f"{status} problem+json" + (f" {code}" if code else "")
        if answer.status != status or not answer.problem or (code and answer.problem.get("code") != code):
            self.mismatches.append(f"{rule} as {who}: wanted {wanted}, got {answer}")

    async def check(self, rule: Rule) -> None:
        admitted = [role for role in Role if role in rule.roles]
        if rule.public:
            await self.expect_ok(rule, "no token", None)
            if not rule.roles:  # it reads no token: whatever is sent changes nothing
                for role in Role:
                    await self.expect_ok(rule, role.value, await self.token(role))
                    await self.expect_ok(rule, f"{role.value} with an expired token",
                                         await self.token(role, expired=True))
                return
        else:
            await self.expect_refused(rule, "no token", None, 401, "missing_token")

        ways = [{"via_query": False}] + ([{"via_query": True}] if rule.feed else [])
        for how in ways:
            suffix = f" (token in ?{FEED_TOKEN_PARAM}=)" if how["via_query"] else ""
            for role in Role:
                if role in rule.roles:
                    await self.expect_ok(rule, role.value + suffix, await self.token(role), **how)
                else:
                    await self.expect_refused(rule, role.value + suffix, await self.token(role), 403, **how)
                await self.expect_refused(rule, f"{role.value} with an expired token{suffix}",
                                          await self.token(role, expired=True), 401, "token_expired", **how)
        if not rule.feed and not rule.public:
            await self.expect_refused(rule, f"{admitted[0].value} with its token in ?{FEED_TOKEN_PARAM}= "
                                      "(only feeds read it there)", await self.token(admitted[0]), 401,
                                      "missing_token", via_query=True)

        # bound exactly as listed: refused for another centre / department / window where the row binds
        # the route so, admitted where it does not
        others = {"center": OTHER_CENTER, "department": OTHER_DEPARTMENT, "window": OTHER_WINDOW}
        for claim, other in others.items():
            carriers = [role for role in admitted
                        if (role != Role.SYSTEM_ADMIN if claim == "center" else claim in CLAIMS[role])]
            for role in carriers:  # (a system admin spans every centre)
                token = await self.token(role, **{claim: other})
                if claim in rule.bound:
                    await self.expect_refused(rule, f"{role.value} of another {claim}", token, 403)
                else:
                    await self.expect_ok(rule, f"{role.value} of another {claim} (bound: "
                                         f"{'/'.join(sorted(rule.bound)) or 'none'})", token)
        if rule.feed and "center" in rule.bound:
            # a feed filters on every ?center= it is given (shared.feeds.by_query), not only on the one the
            # endpoint's parameter binds: each of them must be the caller's
            call = await self.seeds.call(rule)
            for role in admitted:
                if role == Role.SYSTEM_ADMIN:
                    continue
                for smuggled in ([("center", OTHER_CENTER), *call.query],
                                 [*call.query, ("center", OTHER_CENTER)]):
                    await self.expect_refused(rule, f"{role.value} asking for another centre as well "
                                              f"({urlencode(smuggled)})", await self.token(role), 403,
                                              query=smuggled)


# --- the tests ---------------------------------------------------------------------------------------------

def test_the_policy_file_is_well_formed_and_knows_every_role() -> None:
    _, errors = load_policy()
    assert not errors, "tests/authz/policy.yaml:\n" + "\n".join(errors)
    assert set(CLAIMS) == set(Role), f"CLAIMS needs the claims of {set(Role) - set(CLAIMS)}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_of_the_service_is_in_the_policy_and_every_row_is_a_route(service: str, secrets) -> None:
    rules, _ = load_policy()
    routes = service_routes(_app_without_database(service))
    listed = set(rules.get(service, {}))
    missing = sorted(routes - listed)
    stale = sorted(listed - routes)
    assert not missing and not stale, f"{service}: " + "; ".join(filter(None, [
        missing and "routes with no row in tests/authz/policy.yaml (add who may call them): "
        + ", ".join(missing),
        stale and "rows of tests/authz/policy.yaml the service does not have: " + ", ".join(stale)]))


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_answers_every_caller_as_the_policy_says(service: str, service_client,
                                                                    tokens) -> None:
    rules, errors = load_policy()
    assert not errors, "tests/authz/policy.yaml is malformed (see the test above)"
    async with service_client(service) as client:
        routes = service_routes(client.app)
        checker = Checker(client, tokens)
        admin = {"Authorization": f"Bearer {await checker.token(Role.SYSTEM_ADMIN)}"}
        checker.seeds = await SEEDS[service](service, client, admin)
        for route, rule in rules.get(service, {}).items():
            if route in routes:  # the test above names the routes and rows that do not match
                try:
                    await checker.check(rule)
                except MissingSeed as exc:
                    checker.mismatches.append(str(exc))
    assert not checker.mismatches, (
        f"{len(checker.mismatches)} answers of {service} differ from tests/authz/policy.yaml:\n"
        + "\n".join(checker.mismatches))
