"""Fixtures of the browser tests: one launched and seeded hall for the session, one Chromium, and a page per
test whose requests are recorded (a test fails if any left the gateway)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_make_run import Launch, running_hall
from tests.ui.harness import Hall, Recorder, chromium_path, launch_env, seed, sizes


@pytest.fixture(scope="session")
def launched() -> Iterator[Launch]:
    with running_hall("ui", launch_env()) as run:
        yield run


@pytest.fixture(scope="session")
def hall(launched: Launch) -> Hall:
    return seed(launched.url, launched.auth())


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True,
            # a hall's screen speaks and chimes without anyone touching it first
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--lang=zh-CN"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(params=sizes(), ids=lambda size: f"{size[0]}x{size[1]}")
def screen(request: pytest.FixtureRequest) -> tuple[int, int]:
    size: tuple[int, int] = request.param
    return size


@pytest.fixture
def open_page(browser: Any, hall: Hall, screen: tuple[int, int]) -> Iterator[Any]:
    """`open_page(path)`: a fresh browser context (its own storage) at this run's screen size, on the gateway;
    every request of every page opened is recorded and checked at the end."""
    contexts: list[Any] = []
    recorders: list[Recorder] = []

    def make(path: str, *, width: int | None = None, height: int | None = None) -> Any:
        context = browser.new_context(viewport={"width": width or screen[0], "height": height or screen[1]},
                                      locale="zh-CN", timezone_id="Asia/Shanghai")
        contexts.append(context)
        recorder = Recorder(hall.url)
        recorders.append(recorder)
        context.on("request", recorder)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{hall.url}{path}")
        return page

    errors: list[str] = []
    yield make
    for context in contexts:
        context.close()
    outside = [url for recorder in recorders for url in recorder.outside()]
    assert not outside, f"requests that left the gateway: {outside}"
    assert not errors, f"script errors on the page: {errors}"
