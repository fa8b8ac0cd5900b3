"""The whole wiring, with every process real (the `make run` launcher): a centre created at the queue
reaches the read copies of cases, monitor and notify and the hall-display feed through Kafka; a calendar
override made at cases reaches the queue's opening days."""

import json
import time

import httpx

from tests.e2e.test_make_run import Launch, launch  # noqa: F401 - the fixture


def _eventually(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.3)


def test_centre_and_calendar_events_flow_between_services(launch: Launch):  # noqa: F811
    launch.start()
    launch.wait_healthy()
    headers = {"Authorization": f"Bearer {launch.token()}"}
    api = launch.url + "/api"

    with httpx.Client(timeout=30) as client, client.stream(
            "GET", f"{api}/queue/feeds/display", params={"center": "320102"}, headers=headers) as feed:
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("text/event-stream")
        created = httpx.post(f"{api}/queue/centers", json={"id": "320102", "name": "玄武区政务服务中心"},
                             headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        frame: dict = {}
        deadline = time.monotonic() + 60  # keep-alive comments arrive every 15 s, so the loop turns
        for line in feed.iter_lines():
            assert time.monotonic() < deadline, "no center.upserted frame within 60 s"
            if line.startswith("data:"):
                frame = json.loads(line[5:])
                break
        assert frame["type"] == "center.upserted" and frame["data"]["name"] == "玄武区政务服务中心"
        assert frame["sequence"] >= 1

    for service in ("cases", "monitor", "notify"):
        copy = _eventually(lambda s=service: httpx.get(f"{api}/{s}/centers/320102", headers=headers, timeout=5)
                           .raise_for_status().json())
        assert copy["name"] == "玄武区政务服务中心"

    override = httpx.put(f"{api}/cases/calendar/overrides", params={"center": "320102"}, headers=headers,
                         json={"days": [{"date": "2099-03-02", "kind": "holiday", "reason": "台风停工"}]}, timeout=10)
    assert override.status_code == 200, override.text

    def queue_sees_it() -> bool:
        r = httpx.get(f"{api}/queue/centers/320102/calendar", params={"from": "2099-03-02", "to": "2099-03-02"},
                      headers=headers, timeout=5).raise_for_status().json()
        return r["days"][0] == {"date": "2099-03-02", "working": False, "source": "override"}

    assert _eventually(queue_sees_it)
    launch.record_tree()
    assert launch.interrupt() == 0
