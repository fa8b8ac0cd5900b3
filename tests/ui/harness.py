"""The browser tests' hall: `make run`'s launcher (every service and worker, the broker, PostgreSQL, Envoy and the
terminals' pages, as processes) on a simulated clock set to a working morning, seeded through the public APIs
like a centre admin would, and a real headless Chromium (Debian's, driven by Playwright through
`executable_path`) whose every request is recorded.

Screenshots go to var/ui-shots/<width>x<height>/<name>.png (CI keeps the directory as its artefacts)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.clock import LOCAL_TZ, wall_now

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "ui-shots"
CENTRE = "320102"
# a Tuesday morning, 09:30 local: the hall's default schedule is open (9:00-12:00) for the whole run
MORNING = datetime(2026, 12, 8, 9, 30, tzinfo=LOCAL_TZ)
SIZES = {"1920x1080": (1920, 1080), "1366x768": (1366, 768)}
CLERK_PASSWORD = "window clerk password 1"


def chromium_path() -> str:
    """Debian's Chromium (installed by `make browser`, which `make test` runs), or HALL_CHROMIUM."""
    for candidate in (os.environ.get("HALL_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("no Chromium: run `make browser` (Debian's chromium and a CJK font) or set HALL_CHROMIUM")


def sizes() -> list[tuple[int, int]]:
    """The screen sizes of this run: one in CI, both with `make ui-shots` (HALL_UI_SIZES=all)."""
    if os.environ.get("HALL_UI_SIZES") == "all":
        return list(SIZES.values())
    return [SIZES["1920x1080"]]


@dataclass
class Hall:
    """The seeded centre: its gateway URL, device keys, and a clerk signed in at window 1."""

    url: str
    admin: dict[str, str]
    kiosk_key: str
    display_key: str
    clerk: dict[str, str] = field(default_factory=dict)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    people: dict[str, str] = field(default_factory=dict)  # username -> user id, of the clerks made so far

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """`headers` None: as the seeding admin; `{}`: with no token (a public route, a sign-in)."""
        return httpx.request(method, f"{self.url}/api{path}", headers=self.admin if headers is None else headers,
                             timeout=15, **kwargs)

    def ok(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = self.api(method, path, headers, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


def seed(url: str, admin: dict[str, str]) -> Hall:
    """A centre with two services, three windows, a kiosk, a display, and a clerk at window 1's terminal."""
    hall = Hall(url, admin, "", "")
    hall.ok("POST", "/queue/centers", json={"id": CENTRE, "name": "玄武区政务服务中心"})
    hall.ok("POST", f"/queue/centers/{CENTRE}/services", json={"code": "HJ", "name": "户籍办理", "prefix": "A"})
    hall.ok("POST", f"/queue/centers/{CENTRE}/services", json={"code": "SB", "name": "社保业务", "prefix": "B"})
    for number, code in (("1", "HJ"), ("2", "SB"), ("3", "HJ")):
        hall.ok("POST", f"/queue/centers/{CENTRE}/windows", json={
            "number": number, "name": f"综合受理 {number} 号窗口", "services": [{"service_code": code, "weight": 1}]})
    hall.ok("POST", f"/queue/centers/{CENTRE}/notices", json={"text": "请提前准备好身份证原件，办理进度可扫码查询"})

    def key(role: str, label: str, window: str | None = None) -> str:
        body: dict[str, Any] = {"role": role, "center_id": CENTRE, "label": label}
        if window:
            body["window"] = window
        return str(hall.ok("POST", "/auth/device-keys", json=body)["key"])

    hall.kiosk_key = key("kiosk", "一楼取号机 1")
    hall.display_key = key("display", "大厅综合屏")
    terminal_key = key("terminal", "1 号窗口终端", "1")
    hall.ok("POST", "/auth/users", json={"username": "zhang.min", "password": CLERK_PASSWORD, "display_name": "张敏",
                                         "post_title": "综合受理窗口", "role": "clerk", "centers": [CENTRE],
                                         "department": "D01"})
    # the clerk signs in at window 1's terminal, as the window terminal does: the terminal's token, then the login
    terminal = hall.ok("POST", "/auth/token", headers={}, json={"key": terminal_key})["access_token"]
    login = hall.ok("POST", "/auth/login", headers={"Authorization": f"Bearer {terminal}"},
                    json={"username": "zhang.min", "password": CLERK_PASSWORD})
    hall.clerk = {"Authorization": f"Bearer {login['access_token']}"}
    return hall


# an item of the guide, as the public pages and the window terminal use it (promised, two required materials)
HJ_001: dict[str, Any] = {
    "center_id": CENTRE, "code": "HJ-001", "name": "户口迁移登记", "department": "D01", "kind": "promised",
    "legal_limit_days": 20, "promised_limit_days": 5,
    "materials": [{"code": "M1", "name": "居民身份证", "required": True},
                  {"code": "M2", "name": "居民户口簿", "required": True},
                  {"code": "M3", "name": "房屋产权证明", "required": False}],
    "fees": "不收费", "conditions": ["在本区有合法固定住所", "本人或其直系亲属申请"],
    "procedure": [{"name": "申请", "description": "到窗口提交材料"}, {"name": "受理"}, {"name": "决定"}],
    "service_objects": ["natural_person"]}


def created(hall: Hall, method: str, path: str, headers: dict[str, str] | None = None, *, within: float = 30,
            exists_ok: bool = False, **kwargs: Any) -> Any:
    """A write that needs a read copy the broker brings (the centre, the clerk, the handler): retried until it
    passes; its answer. `exists_ok`: a 409 (made by an earlier module or run in this hall) counts as done, and
    answers None."""
    answers: list[httpx.Response] = []

    def attempt() -> bool:
        answers.append(hall.api(method, path, headers, **kwargs))
        return answers[-1].status_code < 300 or (exists_ok and answers[-1].status_code == 409)

    wait_for(attempt, within=within, what=f"{method} {path} (last: {answers[-1].text[:300] if answers else ''})")
    return answers[-1].json() if answers[-1].status_code < 300 and answers[-1].content else None


def clerk_at(hall: Hall, window: str, username: str, name: str, *, photo: bytes | None = None) -> dict[str, str]:
    """A clerk (made on first use, with `photo` if given) logged in at `window`'s terminal: their token's headers.
    A test that runs at each screen size meets the clerk it made at the first."""
    terminal_key = hall.ok("POST", "/auth/device-keys", json={"role": "terminal", "center_id": CENTRE,
                                                             "label": f"{window} 号窗口终端", "window": window})["key"]
    if username not in hall.people:
        user = hall.ok("POST", "/auth/users", json={
            "username": username, "password": CLERK_PASSWORD, "display_name": name, "post_title": "社保业务窗口",
            "role": "clerk", "centers": [CENTRE], "department": "D01"})
        if photo is not None:
            hall.ok("PUT", f"/auth/users/{user['id']}/photo", headers={**hall.admin, "Content-Type": "image/png"},
                    content=photo)
        hall.people[username] = user["id"]
    terminal = hall.ok("POST", "/auth/token", headers={}, json={"key": terminal_key})["access_token"]
    login = hall.ok("POST", "/auth/login", headers={"Authorization": f"Bearer {terminal}"},
                    json={"username": username, "password": CLERK_PASSWORD})
    return {"Authorization": f"Bearer {login['access_token']}"}


def png(width: int = 60, height: int = 80) -> bytes:
    """A small solid PNG (a stand-in for a staff photo)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x2a\x5c\x9a" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def launch_env() -> dict[str, str]:
    """The simulated clock every process of the launcher shares: MORNING from now on, at real speed."""
    return {"HALL_CLOCK_MODE": "simulated", "HALL_CLOCK_SIM_REAL_START": wall_now().isoformat(),
            "HALL_CLOCK_SIM_START": MORNING.isoformat()}


class Recorder:
    """Every request a page makes; `outside()` those not to the gateway (nor data:/blob: URLs)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.urls: list[str] = []

    def __call__(self, request: Any) -> None:
        self.urls.append(request.url)

    def outside(self) -> list[str]:
        mine = urlsplit(self.origin).netloc
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != mine]


def shot(page: Any, name: str) -> Path:
    size = page.viewport_size
    directory = SHOTS / f"{size['width']}x{size['height']}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def wait_for(check: Any, within: float = 10, what: str = "condition", every: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(every)
