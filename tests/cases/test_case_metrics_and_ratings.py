"""What the registry counts (at commit only), the open-case gauges the worker's job sets, and ratings from the
queue's evaluation.submitted attached to cases."""

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from services.cases.metrics import count_open_cases
from services.cases.ratings import attach_rating
from shared.events.catalog import EvaluationSubmitted
from shared.events.envelope import Envelope
from tests.cases.case_support import A, accept, act, case_body, clerk


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_acceptance_is_counted_once_committed_and_a_refused_one_not(cases, tokens):
    before = sample("hall_cases_total", center=A, kind="promised", event="accepted")
    await accept(cases, tokens)
    bad = await cases.post("/cases", json=case_body("NOPE"), headers=clerk(tokens))
    assert bad.status_code == 404 and bad.json()["field"] == "item_code"
    assert sample("hall_cases_total", center=A, kind="promised", event="accepted") - before == 1


async def test_the_open_case_gauges_follow_the_table(cases, tokens, fixed_clock):
    first = (await accept(cases, tokens))["case_no"]
    await accept(cases, tokens)
    await act(cases, clerk(tokens), first, "request-supplement", {"missing_materials": ["照片"]})
    async with cases.app.state.sessionmaker() as session:
        await count_open_cases(session, fixed_clock.now())
    assert sample("hall_cases_open", center=A, kind="promised", status="in_progress") == 1
    assert sample("hall_cases_open", center=A, kind="promised", status="supplement") == 1
    assert sample("hall_cases_overdue", center=A, kind="promised") == 0
    await act(cases, clerk(tokens), first, "withdraw", {"reason": "申请人撤回"})
    later = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # past the other case's due date, 26 Feb
    async with cases.app.state.sessionmaker() as session:
        await count_open_cases(session, later)
    assert sample("hall_cases_open", center=A, kind="promised", status="supplement") == 0
    assert sample("hall_cases_overdue", center=A, kind="promised") == 1


def rating_event(evaluation_id, case_no, rating=5, center=A):
    payload = EvaluationSubmitted(evaluation_id=evaluation_id, center_id=center, ticket_id=evaluation_id,
                                  service_code="HJ", window="3", clerk_id="clerk-1", rating=rating,
                                  case_no=case_no, channel="evaluator",
                                  submitted_at=datetime(2026, 2, 12, 2, 0, tzinfo=UTC))
    return Envelope.wrap("queue", payload, subject=f"evaluation:{evaluation_id}", center_id=center)


async def test_a_rating_naming_a_case_attaches_once(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    async with cases.app.state.sessionmaker() as session, session.begin():
        await attach_rating(session, rating_event(1, no, rating=4))
        await attach_rating(session, rating_event(2, no, rating=1))  # a second rating of the case: not kept
        await attach_rating(session, rating_event(3, f"{A}-20260212-999999"))  # no such case here
        await attach_rating(session, rating_event(4, no, center="320104"))  # another centre's claim
    case = (await cases.get(f"/cases/{no}", headers=clerk(tokens))).json()
    assert case["rating"] == 4
    rows = await cases.db.fetch("SELECT evaluation_id FROM case_ratings ORDER BY evaluation_id")
    assert [r["evaluation_id"] for r in rows] == [1]
