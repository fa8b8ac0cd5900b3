"""The services' logging: one JSON handler, and no library writing a request's full URL (its query may
carry a token)."""

from __future__ import annotations

import logging

import httpx

from shared.logging import configure_logging


def test_an_outgoing_requests_url_is_not_logged_by_httpx():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    try:
        configure_logging("notify", "DEBUG")
        root.addHandler(Keep())
        with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as client:
            assert client.get("http://provider.test/hook", params={"access_token": "tok-123"}).status_code == 200
        logging.getLogger("shared.test").info("still logging")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    assert "still logging" in seen
    assert not [line for line in seen if "tok-123" in line]
