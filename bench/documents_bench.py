"""Benchmark of the printed notices: 承诺件告知单 (receipt) PDFs rendered per second, in-process.

Why: a window prints a receipt at every acceptance, and the route renders in the thread pool, so a render's CPU
time is what a busy hall's acceptances queue behind. Measured in the same run, on the same sample case:
- the receipt as the route builds it (builders.receipt + shared.documents.render);
- the same page without its QR code: what drawing the QR code's modules costs;
- a page with one character: the floor of any PDF of the vendored Common face (fpdf2 parses the 7,700-glyph
  face and subsets it for each PDF), which bounds what any notice of this renderer can reach.

Run: ``uv run python bench/documents_bench.py [seconds per measure]`` (default 5).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter

# `uv run python bench/documents_bench.py` puts bench/ on sys.path, not the repo root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from services.cases.documents import builders  # noqa: E402
from services.cases.models import Case  # noqa: E402
from shared import clock  # noqa: E402
from shared.documents import Document, QRCode, render  # noqa: E402


def sample_case() -> Case:
    accepted = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
    return Case(case_no="320102-20260212-000001", center_id="320102", item_code="ITEM1", item_name="食品经营许可（新办）",
                department="gov-sj", kind="promised", status="in_progress", stages=[], stage_index=0,
                materials=["营业执照复印件", "法定代表人身份证明", "食品安全管理制度", "经营场所平面图", "从业人员健康证明"],
                accepted_at=accepted, accepted_on=date(2026, 2, 12), promised_limit_days=5, legal_limit_days=20,
                due_at=datetime(2026, 2, 26, 15, 59, 59, tzinfo=UTC),
                legal_due_at=datetime(2026, 3, 18, 15, 59, 59, tzinfo=UTC), window="3", handler_name="王小明",
                expedited=False, extension_days=0)


HEAD = builders.Letterhead(center_id="320102", center_name="南京市玄武区政务服务中心", department_name="区市场监督管理局",
                           phone="025-84201234", public_base_url="https://hall.example")
APPLICANT = builders.Applicant(name="欧阳娜娜", id_number_masked="1101**********002X", phone_masked="138****5678")


def rates(works: list[Callable[[], bytes]], seconds: float, rounds: int = 5) -> list[tuple[float, int]]:
    """PDFs/s and size of each work, measured in interleaved rounds (this machine's other load hits each alike)."""
    for work in works:
        work()  # warm: imports, the faces' cmaps
    done, spent, sizes = [0] * len(works), [0.0] * len(works), [0] * len(works)
    for _ in range(rounds):
        for i, work in enumerate(works):
            start = perf_counter()
            while perf_counter() - start < seconds / rounds:
                sizes[i] = len(work())
                done[i] += 1
            spent[i] += perf_counter() - start
    return [(d / t, size) for d, t, size in zip(done, spent, sizes, strict=True)]


def main(seconds: float) -> None:
    clock.set_clock(clock.FixedClock(datetime(2026, 2, 12, 1, 0, tzinfo=UTC)))
    case = sample_case()

    def receipt() -> bytes:
        return render(builders.receipt(case, HEAD, APPLICANT, fees="免费", code=None))

    without_qr = replace(builders.receipt(case, HEAD, APPLICANT, fees="免费"),
                         blocks=tuple(b for b in builders.receipt(case, HEAD, APPLICANT, fees="免费").blocks
                                      if not isinstance(b, QRCode)))
    floor_doc = Document(title="单", issuer="")
    (receipts, size), (bare, bare_size), (floor, floor_size) = rates(
        [receipt, lambda: render(without_qr), lambda: render(floor_doc)], seconds)
    print(f"receipt PDF (承诺件告知单): {receipts:.1f} PDFs/s ({1000 / receipts:.0f} ms each), {size / 1024:.1f} KiB")
    print(f"  the same page without its QR code: {bare:.1f} PDFs/s, {bare_size / 1024:.1f} KiB "
          f"(the receipt runs at {receipts / bare:.0%} of it)")
    print(f"  one character of the Common face (the floor of any PDF of it): {floor:.1f} PDFs/s, {floor_size / 1024:.1f} "
          f"KiB (the receipt runs at {receipts / floor:.0%} of it)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
