"""The import of open cases from a previous system (a centre going live), for POST /import and the intake CLI.

Every row is read and checked before anything is written; one bad row rejects the whole file with every
row's problems named (row number, field, reason), and nothing is imported. A good file is written in bulk
(COPY) in the caller's transaction: the cases with their clock counted by services/cases/deadlines.py from
the original acceptance date with the pauses and extension applied, their pauses, one `import` audit entry
each, the previous system's numbers (imported_cases) and one `case.accepted` (imported, overdue_at_import)
each through the outbox. Numbers are this service's own (`<centre>-<yyyymmdd of the original acceptance>-
<daily sequence>`), taken after all the slow work (personal data, seals), just before the writes, because a
day's counter row stays locked to the commit. Never commits.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import secrets
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, cast

import asyncpg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import deadlines, registry
from services.cases.calendar import service as calendar_service
from services.cases.intake.schemas import ImportRow, PauseIn
from shared import clock
from shared.calendar.engine import WorkCalendar
from shared.db import driver_connection
from shared.errors import Conflict
from shared.events.catalog import CaseAccepted, CaseFacts, CaseStatus, Handler, ItemKind, ItemRef, StageLimit
from shared.events.outbox import Outgoing, publish_all
from shared.metrics import at_commit
from shared.pii import PersonalDataError, mask_name

Format = Literal["csv", "json"]
Progress = Callable[[str, int, int], None]  # (phase, done, total): the CLI's progress bar
EVENT_CHUNK = 2000  # case.accepted events per outbox statement
PAUSE_STATUS = {"supplement": "supplement", "special": "special", "forward": "forwarded"}
DEFAULT_REASON = {"supplement": "补正材料 (原系统)", "special": "特别程序 (原系统)", "forward": "上报 (原系统)"}


@dataclass(frozen=True)
class RowError:
    """One problem of one row: rows count from 1 (the CSV header is row 0), `field` as the file names it."""

    row: int
    field: str
    reason: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason, "code": self.code}


class ImportRejected(Exception):
    """The file has problems: nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problems")
        self.errors = errors

    @property
    def detail(self) -> str:
        rows = sorted({e.row for e in self.errors})
        first = self.errors[0]
        return (f"{len(rows)} row(s) have problems, nothing was imported; first: row {first.row}, {first.field}: "
                f"{first.reason}")


# reading the file

CSV_COLUMNS = ("legacy_no", "item_code", "accepted_at", "stage", "stage_started_on", "handler", "window",
               "applicant_name", "id_number", "phone", "org", "materials", "source", "pauses", "forwarded_to",
               "extension_days", "extension_approved", "extension_reason")
CSV_REQUIRED = ("legacy_no", "item_code", "accepted_at", "handler", "applicant_name", "id_number")
_CSV_FIELD = {"applicant.name": "applicant_name", "applicant.id_number": "id_number", "applicant.phone": "phone",
              "applicant.org": "org", "applicant": "applicant_name", "extension.days": "extension_days",
              "extension.approved": "extension_approved", "extension.reason": "extension_reason",
              "extension": "extension_days"}
_TRUE, _FALSE = {"true", "1", "yes", "y", "是"}, {"false", "0", "no", "n", "否"}


def _json_field(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "row"


def _csv_field(loc: Sequence[int | str]) -> str:
    path = ".".join(str(p) for p in loc if not isinstance(p, int))
    if path.startswith("pauses"):
        return "forwarded_to" if path.endswith("to_authority") else "pauses"
    return _CSV_FIELD.get(path, path or "row")


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def _csv_pauses(cell: str, forwarded_to: str | None) -> list[dict[str, Any]]:
    """`kind:from..to[:reason]` entries separated by `;`; an empty `to` is a pause still open."""
    pauses: list[dict[str, Any]] = []
    for entry in _split(cell):
        kind, _, rest = entry.partition(":")
        span, _, reason = rest.partition(":")
        start, dots, end = span.partition("..")
        if not dots:
            raise ValueError(f"pause {entry!r} is not kind:from..to (to empty while still paused)")
        pause: dict[str, Any] = {"kind": kind.strip(), "from": start.strip(), "to": end.strip() or None}
        if reason.strip():
            pause["reason"] = reason.strip()
        if kind.strip() == "forward" and forwarded_to:
            pause["to_authority"] = forwarded_to
        pauses.append(pause)
    return pauses


def _csv_row(cells: dict[str, str]) -> dict[str, Any]:
    """A CSV line in the JSON row's shape (empty cells are absent); a cell it cannot read raises ValueError
    naming its column."""
    value = {k: v.strip() for k, v in cells.items() if k in CSV_COLUMNS and v is not None and v.strip()}
    row: dict[str, Any] = {k: value[k] for k in ("legacy_no", "item_code", "accepted_at", "stage",
                                                  "stage_started_on", "handler", "window", "source") if k in value}
    row["applicant"] = {k: value[c] for k, c in (("name", "applicant_name"), ("id_number", "id_number"),
                                                  ("phone", "phone"), ("org", "org")) if c in value}
    if "materials" in value:
        row["materials"] = _split(value["materials"])
    if "pauses" in value:
        try:
            row["pauses"] = _csv_pauses(value["pauses"], value.get("forwarded_to"))
        except ValueError as exc:
            raise _CellError("pauses", str(exc)) from None
    elif "forwarded_to" in value:
        raise _CellError("forwarded_to", "forwarded_to names the authority of an open forward pause: none is given")
    if any(k in value for k in ("extension_days", "extension_approved", "extension_reason")):
        extension: dict[str, Any] = {"days": value.get("extension_days")}
        if "extension_approved" in value:
            flag = value["extension_approved"].lower()
            if flag not in _TRUE | _FALSE:
                raise _CellError("extension_approved", "must be true or false (是/否, 1/0)")
            extension["approved"] = flag in _TRUE
        if "extension_reason" in value:
            extension["reason"] = value["extension_reason"]
        row["extension"] = extension
    return row


class _CellError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _validated(number: int, raw: Any, fmt: Format) -> ImportRow | list[RowError]:
    try:
        return ImportRow.model_validate(raw)
    except ValidationError as exc:
        name = _csv_field if fmt == "csv" else _json_field
        return [RowError(number, name(e["loc"]), e["msg"], "validation_failed") for e in exc.errors()]


def read_rows(raw: bytes, fmt: Format, charset: str = "utf-8") -> tuple[list[tuple[int, ImportRow]], list[RowError]]:
    """The file's rows, numbered from 1, and the problems of their shape (a file it cannot read at all is one
    problem of row 0)."""
    rows: list[tuple[int, ImportRow]] = []
    errors: list[RowError] = []
    try:
        text = raw.decode("utf-8-sig" if charset.lower().replace("_", "-") in ("utf-8", "utf8") else charset)
    except (UnicodeDecodeError, LookupError) as exc:
        return [], [RowError(0, "body", f"not {charset} text: {exc}", "undecodable")]
    if fmt == "json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            return [], [RowError(0, "body", f"not JSON: {exc}", "invalid_json")]
        if not isinstance(document, dict) or set(document) != {"cases"} or not isinstance(document["cases"], list):
            return [], [RowError(0, "cases", 'the body is {"cases": [row, ...]}', "invalid_json")]
        raws: Iterable[tuple[int, Any]] = enumerate(document["cases"], start=1)
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        unknown = [h for h in header if h not in CSV_COLUMNS]
        missing = [c for c in CSV_REQUIRED if c not in header]
        errors += [RowError(0, h, f"unknown column (the columns are {', '.join(CSV_COLUMNS)})", "unknown_column")
                   for h in unknown]
        errors += [RowError(0, c, "required column missing", "missing_column") for c in missing]
        if errors:
            return [], errors
        raws = _csv_dicts(reader, errors)
    for number, item in raws:
        found = _validated(number, item, fmt)
        if isinstance(found, list):
            errors += found
        else:
            rows.append((number, found))
    return rows, errors


def _csv_dicts(reader: csv.DictReader[str], errors: list[RowError]) -> Iterable[tuple[int, Any]]:
    for number, cells in enumerate(reader, start=1):
        if None in cells:
            errors.append(RowError(number, "row", "more cells than columns", "extra_cells"))
            continue
        try:
            yield number, _csv_row(cells)
        except _CellError as exc:
            errors.append(RowError(number, exc.field, exc.reason, "validation_failed"))


# checking the rows and counting their clocks

class CaseRow(NamedTuple):
    """A case's columns, in the order COPY writes them (case_no filled in when numbers are taken)."""

    case_no: str
    center_id: str
    item_code: str
    item_name: str
    department: str
    kind: str
    status: str
    stages: str  # jsonb text
    stage_index: int
    stage_started_on: date
    lookup_code_hash: str
    source: str
    materials: str  # jsonb text
    accepted_at: datetime
    accepted_on: date
    promised_limit_days: int
    legal_limit_days: int
    warn_days: int
    extension_days: int
    max_extension_days: int
    special_limit_days: int
    forward_followup_days: int
    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None
    stage_due_at: datetime | None
    clock_version: int
    paused_kind: str | None
    paused_on: date | None
    supplement_count: int
    special_count: int
    extension_request_days: int | None
    extension_reason: str | None
    expedited: bool
    forwarded_to: str | None
    follow_up_at: datetime | None
    handler_id: str
    handler_name: str
    window: str | None
    applicant_name_masked: str
    applicant_name_encrypted: bytes
    applicant_hash: str
    id_number_masked: str
    id_number_encrypted: bytes
    phone_hash: str | None
    phone_masked: str | None
    phone_encrypted: bytes | None
    org: str | None
    imported: bool
    overdue_at_import: bool
    created_at: datetime
    updated_at: datetime


PauseRow = tuple[str, str, date, date | None, str, datetime | None]  # kind, reason, from, to, missing (json), limit


@dataclass(frozen=True)
class ItemRow:
    code: str
    name: str
    department: str
    kind: str
    legal_limit_days: int
    promised_limit_days: int
    stages: list[StageLimit]
    stages_json: str
    warn_days: int
    max_extension_days: int
    forward_followup_days: int
    special_limit_days: int
    active: bool


@dataclass
class Prepared:
    """A checked row: its case, its pauses, and what its event needs (the phone sealed for notify; the lookup
    code's seal comes with the code, in `seal`)."""

    row: int
    legacy_no: str
    case: CaseRow
    stage: str
    pauses: list[PauseRow]
    materials: list[str]
    phone_sealed: str | None
    lookup_code_sealed: str = ""


@dataclass(frozen=True)
class Lookups:
    items: dict[str, ItemRow]
    staff: dict[str, tuple[str, list[str], bool]]  # id -> (display name, centres, active)
    imported: set[str]  # legacy numbers of the centre already imported


async def lookups(session: AsyncSession, center_id: str, rows: Sequence[tuple[int, ImportRow]]) -> Lookups:
    db = await driver_connection(session)
    items = {}
    for r in await db.fetch("SELECT code, name, department, kind, legal_limit_days, promised_limit_days, "
                            "stages::text AS stages, warn_days, max_extension_days, forward_followup_days, "
                            "special_limit_days, active FROM items WHERE center_id = $1", center_id):
        stages = [StageLimit.model_validate(s) for s in json.loads(r["stages"])]
        items[r["code"]] = ItemRow(**{**dict(r), "stages": stages, "stages_json": r["stages"]})
    handlers = sorted({row.handler for _, row in rows})
    staff = {r["id"]: (r["display_name"], list(r["centers"]), r["active"]) for r in await db.fetch(
        "SELECT id, display_name, centers, active FROM staff WHERE id = ANY($1::text[])", handlers)}
    legacy = [row.legacy_no for _, row in rows]
    imported = {r["legacy_no"] for r in await db.fetch(
        "SELECT legacy_no FROM imported_cases WHERE center_id = $1 AND legacy_no = ANY($2::text[])",
        center_id, legacy)}
    return Lookups(items, staff, imported)


class _RowProblem(Exception):
    def __init__(self, field: str, reason: str, code: str) -> None:
        super().__init__(reason)
        self.field, self.reason, self.code = field, reason, code


def _pause_field(fmt: Format, i: int, name: str) -> str:
    return "pauses" if fmt == "csv" else f"pauses[{i}].{name}"


def _check_pauses(pauses: list[PauseIn], accepted_on: date, today: date, fmt: Format) -> None:
    supplements = 0
    for i, pause in enumerate(pauses):
        if pause.from_ < accepted_on:
            raise _RowProblem(_pause_field(fmt, i, "from"), f"the pause begins {pause.from_}, before the acceptance "
                              f"date {accepted_on}", "pause_before_acceptance")
        if pause.from_ > today or (pause.to is not None and pause.to > today):
            raise _RowProblem(_pause_field(fmt, i, "to" if pause.from_ <= today else "from"),
                              f"the pause lies in the future (today is {today})", "pause_in_future")
        if pause.to is not None and pause.to < pause.from_:
            raise _RowProblem(_pause_field(fmt, i, "to"), f"the pause ends {pause.to}, before it begins "
                              f"{pause.from_}", "pause_ends_before_start")
        if i > 0:
            before = pauses[i - 1]
            if before.to is None:
                raise _RowProblem(_pause_field(fmt, i - 1, "to"), "only the last pause may still be open",
                                  "open_pause_not_last")
            if pause.from_ < before.to:
                raise _RowProblem(_pause_field(fmt, i, "from"), f"the pause begins {pause.from_}, before the one "
                                  f"before it ended ({before.to}): list them in order, not overlapping",
                                  "pauses_overlap")
        if pause.kind == "forward" and pause.to is not None:
            raise _RowProblem(_pause_field(fmt, i, "to"), "a forwarded case (上报) stays stopped until its result "
                              "completes it: an open case has no finished forward pause", "forward_resumed")
        if pause.kind != "forward" and pause.to_authority is not None:
            raise _RowProblem(_pause_field(fmt, i, "to_authority"), "only a forward pause (上报) names an authority",
                              "not_forwarded")
        supplements += pause.kind == "supplement"
        if supplements > 1:
            raise _RowProblem(_pause_field(fmt, i, "kind"), "a case gets one 补正 (一次性告知: everything missing at "
                              "once)", "second_supplement")


def _prepare(ctx: registry.Context, center_id: str, number: int, row: ImportRow, found: Lookups, fmt: Format,
             now: datetime, today: date) -> Prepared:
    """One row checked against the catalogue, the staff copy and the rules of the clock, and its case counted;
    raises _RowProblem naming the field."""
    accepted_at = row.accepted_at if row.accepted_at.tzinfo else row.accepted_at.replace(tzinfo=clock.LOCAL_TZ)
    if accepted_at > now:
        raise _RowProblem("accepted_at", f"{accepted_at.isoformat()} is in the future", "future_acceptance")
    accepted_on = clock.local_date(accepted_at)
    item = found.items.get(row.item_code)
    if item is None or not item.active:
        raise _RowProblem("item_code", f"centre {center_id} has no active item {row.item_code}", "unknown_item")
    handler = found.staff.get(row.handler)
    if handler is None:
        raise _RowProblem("handler", f"{row.handler} is not a user known here", "unknown_handler")
    if center_id not in handler[1] and "*" not in handler[1]:
        raise _RowProblem("handler", f"{row.handler} does not work in centre {center_id}", "wrong_handler")
    stages = item.stages or [StageLimit(name=registry.DEFAULT_STAGE, limit_days=item.promised_limit_days)]
    names = [s.name for s in stages]
    stage = row.stage or names[0]
    if stage not in names:
        raise _RowProblem("stage", f"item {item.code} has the stages {', '.join(names)}, not {stage}", "unknown_stage")
    stage_index = names.index(stage)
    stage_started_on = row.stage_started_on or accepted_on
    if not accepted_on <= stage_started_on <= today:
        raise _RowProblem("stage_started_on", f"{stage_started_on} is not between the acceptance date {accepted_on} "
                          f"and today {today}", "stage_start_out_of_range")
    _check_pauses(row.pauses, accepted_on, today, fmt)
    extension = row.extension
    extension_field = "extension_days" if fmt == "csv" else "extension.days"
    if extension is not None and extension.days > item.max_extension_days:
        raise _RowProblem(extension_field, f"item {item.code} allows an extension of at most "
                          f"{item.max_extension_days} working days", "extension_too_long")
    open_pause = row.pauses[-1] if row.pauses and row.pauses[-1].to is None else None
    if extension is not None and not extension.approved and open_pause is not None:
        raise _RowProblem("extension_approved" if fmt == "csv" else "extension.approved",
                          "a case waiting for the extension decision is not paused as well", "pending_and_paused")
    extension_days = extension.days if extension is not None and extension.approved else 0
    clock_pauses = tuple(deadlines.Pause(p.from_, p.to) for p in row.pauses)
    calendar = ctx.calendar
    for i, pause in enumerate(row.pauses):  # neither a pause can start after due_at (DOMAIN.md)
        before = deadlines.compute(calendar, deadlines.ClockInputs(
            center_id=center_id, accepted_on=accepted_on, promised_days=item.promised_limit_days,
            legal_days=item.legal_limit_days, warn_days=item.warn_days, extension_days=extension_days,
            pauses=clock_pauses[:i]))
        if pause.from_ > clock.local_date(before.due_at):
            raise _RowProblem(_pause_field(fmt, i, "from"), f"the case was due at {before.due_at.isoformat()}: an "
                              "overdue case cannot be paused", "pause_after_due")
    due = deadlines.compute(calendar, deadlines.ClockInputs(
        center_id=center_id, accepted_on=accepted_on, promised_days=item.promised_limit_days,
        legal_days=item.legal_limit_days, warn_days=item.warn_days, extension_days=extension_days,
        pauses=clock_pauses, stage_started_on=stage_started_on,
        stage_limit_days=stages[stage_index].limit_days if item.stages else None))
    try:
        ident = ctx.pii.id_card(row.applicant.id_number)
    except PersonalDataError as exc:
        raise _RowProblem("id_number" if fmt == "csv" else "applicant.id_number", exc.reason,
                          "invalid_id_number") from None
    try:
        tel = ctx.pii.phone(row.applicant.phone) if row.applicant.phone else None
    except PersonalDataError as exc:
        raise _RowProblem("phone" if fmt == "csv" else "applicant.phone", exc.reason, "invalid_phone") from None
    pauses: list[PauseRow] = []
    follow_up_at: datetime | None = None
    for pause in row.pauses:
        limit_at = None
        if pause.kind == "special":
            limit_at = calendar.due_at(pause.from_, item.special_limit_days, center_id)
        elif pause.kind == "forward":
            limit_at = follow_up_at = calendar.due_at(pause.from_, item.forward_followup_days, center_id)
        pauses.append((pause.kind, pause.reason or DEFAULT_REASON[pause.kind], pause.from_, pause.to,
                       json.dumps(pause.missing_materials, ensure_ascii=False), limit_at))
    if open_pause is not None:
        status = PAUSE_STATUS[open_pause.kind]
    elif extension is not None and not extension.approved:
        status = "extension_pending"
    else:
        status = "in_progress"
    case = CaseRow(
        case_no="", center_id=center_id, item_code=item.code, item_name=item.name, department=item.department,
        kind=item.kind, status=status, stages=item.stages_json, stage_index=stage_index,
        stage_started_on=stage_started_on, lookup_code_hash="", source=row.source,
        materials=json.dumps(row.materials, ensure_ascii=False), accepted_at=accepted_at, accepted_on=accepted_on,
        promised_limit_days=item.promised_limit_days, legal_limit_days=item.legal_limit_days,
        warn_days=item.warn_days, extension_days=extension_days, max_extension_days=item.max_extension_days,
        special_limit_days=item.special_limit_days, forward_followup_days=item.forward_followup_days,
        due_at=due.due_at, legal_due_at=due.legal_due_at, warn_at=due.warn_at, stage_due_at=due.stage_due_at,
        clock_version=1, paused_kind=open_pause.kind if open_pause else None,
        paused_on=open_pause.from_ if open_pause else None,
        supplement_count=sum(p.kind == "supplement" for p in row.pauses),
        special_count=sum(p.kind == "special" for p in row.pauses),
        extension_request_days=extension.days if extension is not None and not extension.approved else None,
        extension_reason=(extension.reason or "延期 (原系统)") if extension is not None else None, expedited=False,
        forwarded_to=(open_pause.to_authority or "上级机关") if open_pause and open_pause.kind == "forward" else None,
        follow_up_at=follow_up_at, handler_id=row.handler, handler_name=handler[0], window=row.window,
        applicant_name_masked=mask_name(row.applicant.name),
        applicant_name_encrypted=ctx.pii.encrypt(row.applicant.name.strip()).encode(),
        applicant_hash=ident["hash"], id_number_masked=ident["masked"], id_number_encrypted=ident["encrypted"].encode(),
        phone_hash=tel["hash"] if tel else None, phone_masked=tel["masked"] if tel else None,
        phone_encrypted=tel["encrypted"].encode() if tel else None, org=row.applicant.org, imported=True,
        # a case stopped before its due date is not overdue while stopped (no overdue fires while paused)
        overdue_at_import=open_pause is None and now > due.due_at, created_at=now, updated_at=now)
    return Prepared(number, row.legacy_no, case, stage, pauses, list(row.materials),
                    tel["sealed_for_notify"] if tel else None)


def check(ctx: registry.Context, center_id: str, rows: Sequence[tuple[int, ImportRow]], found: Lookups,
          fmt: Format, progress: Progress | None = None) -> tuple[list[Prepared], list[RowError]]:
    """Every row checked and counted; the problems of all of them."""
    now = clock.now()
    today = clock.local_date(now)
    prepared: list[Prepared] = []
    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for done, (number, row) in enumerate(rows, start=1):
        if row.legacy_no in first_row:
            errors.append(RowError(number, "legacy_no", f"{row.legacy_no} is also row {first_row[row.legacy_no]}",
                                   "duplicate_legacy_no"))
        elif row.legacy_no in found.imported:
            errors.append(RowError(number, "legacy_no", f"{row.legacy_no} was imported before", "already_imported"))
        first_row.setdefault(row.legacy_no, number)
        try:
            prepared.append(_prepare(ctx, center_id, number, row, found, fmt, now, today))
        except _RowProblem as problem:
            errors.append(RowError(number, problem.field, problem.reason, problem.code))
        if progress is not None and (done % 1000 == 0 or done == len(rows)):
            progress("check", done, len(rows))
    return prepared, errors


def seal(ctx: registry.Context, prepared: list[Prepared], progress: Progress | None = None) -> None:
    """Give each case its lookup code: only its keyed hash is stored, and the code goes to notify sealed (the
    applicant learns it by SMS with the new case number). An X25519 seal a case: slow, so done only once every
    row passed, and before any lock is taken."""
    for done, p in enumerate(prepared, start=1):
        code = "".join(secrets.choice(registry.LOOKUP_ALPHABET) for _ in range(registry.LOOKUP_LENGTH))
        p.case = p.case._replace(lookup_code_hash=registry.lookup_hash(ctx.pii, code))
        p.lookup_code_sealed = ctx.pii.seal_for_notify(code)
        if progress is not None and (done % 1000 == 0 or done == len(prepared)):
            progress("seal", done, len(prepared))


# writing

_COUNTERS = """
    INSERT INTO daily_counters (scope, business_date, value)
    SELECT $1, t.d, t.n FROM unnest($2::date[], $3::bigint[]) AS t(d, n)
    ON CONFLICT (scope, business_date) DO UPDATE SET value = daily_counters.value + EXCLUDED.value
    RETURNING business_date, value
"""


async def _number(db: asyncpg.Connection, center_id: str, prepared: list[Prepared]) -> None:
    """Case numbers by the original acceptance date, in acceptance order within a day, gap-free."""
    prepared.sort(key=lambda p: (p.case.accepted_at, p.row))
    per_day = Tally(p.case.accepted_on for p in prepared)
    days = sorted(per_day)
    rows = await db.fetch(_COUNTERS, f"case:{center_id}", days, [per_day[d] for d in days])
    next_value = {r["business_date"]: r["value"] - per_day[r["business_date"]] + 1 for r in rows}
    for p in prepared:
        value = next_value[p.case.accepted_on]
        next_value[p.case.accepted_on] = value + 1
        p.case = p.case._replace(case_no=f"{center_id}-{p.case.accepted_on:%Y%m%d}-{value:06d}")


def _facts(case: CaseRow, stage: str) -> CaseFacts:
    return CaseFacts(
        case_no=case.case_no, center_id=case.center_id, kind=cast(ItemKind, case.kind),
        status=cast(CaseStatus, case.status), stage=stage, stage_index=case.stage_index,
        accepted_at=case.accepted_at, due_at=case.due_at, legal_due_at=case.legal_due_at, warn_at=case.warn_at,
        stage_due_at=case.stage_due_at, clock_version=case.clock_version, department=case.department,
        item=ItemRef(code=case.item_code, name=case.item_name, promised_limit_days=case.promised_limit_days,
                     legal_limit_days=case.legal_limit_days),
        handler=Handler(id=case.handler_id, display_name=case.handler_name), window=case.window,
        applicant_hash=case.applicant_hash, applicant_masked=case.applicant_name_masked, expedited=False,
        imported=True, overdue_at_import=case.overdue_at_import)


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str


async def write(session: AsyncSession, ctx: registry.Context, actor: Actor, center_id: str, fmt: Format,
                via: Literal["api", "cli"], prepared: list[Prepared], progress: Progress | None = None) -> int:
    """Number and write the checked cases, their pauses, audit entries, legacy numbers and events; returns the
    import's id. A legacy number imported meanwhile by another import is a 409 (the transaction then rolls
    back)."""
    db = await driver_connection(session)
    now = clock.now()
    overdue = sum(p.case.overdue_at_import for p in prepared)
    import_id = int(await db.fetchval(
        "INSERT INTO case_imports (center_id, imported_by, imported_at, format, via, rows, overdue) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id", center_id, actor.subject, now, fmt, via,
        len(prepared), overdue))
    await _number(db, center_id, prepared)
    total = len(prepared)
    try:
        await db.copy_records_to_table("cases", columns=list(CaseRow._fields), records=[p.case for p in prepared])
        if progress is not None:
            progress("write", total // 4, total)
        await db.copy_records_to_table(
            "case_pauses", columns=["case_no", "kind", "reason", "paused_on", "resumed_on", "missing_materials",
                                    "limit_at"],
            records=[(p.case.case_no, *pause) for p in prepared for pause in p.pauses])
        await db.copy_records_to_table(
            "case_history", columns=["case_no", "at", "actor_id", "actor_role", "action", "from_status",
                                     "to_status", "from_stage", "to_stage", "reason", "details"],
            records=[(p.case.case_no, now, actor.subject, actor.role, "import", None, p.case.status, None, p.stage,
                      None, json.dumps({"legacy_no": p.legacy_no, "import_id": import_id,
                                        "accepted_at": p.case.accepted_at.isoformat(),
                                        "due_at": p.case.due_at.isoformat(),
                                        "legal_due_at": p.case.legal_due_at.isoformat(),
                                        "extension_days": p.case.extension_days, "pauses": len(p.pauses),
                                        "overdue_at_import": p.case.overdue_at_import, "source": p.case.source},
                                       ensure_ascii=False)) for p in prepared])
        await db.copy_records_to_table(
            "imported_cases", columns=["center_id", "legacy_no", "case_no", "import_id"],
            records=[(center_id, p.legacy_no, p.case.case_no, import_id) for p in prepared])
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a case of this file was imported meanwhile by another import ({exc.detail})",
                       field="legacy_no", code="already_imported") from None
    if progress is not None:
        progress("write", total // 2, total)
    for start in range(0, total, EVENT_CHUNK):
        chunk = prepared[start:start + EVENT_CHUNK]
        await publish_all(session, registry.PRODUCER, [Outgoing(CaseAccepted(
            case=_facts(p.case, p.stage), source=cast(Literal["window", "online"], p.case.source),
            materials=p.materials, id_number_masked=p.case.id_number_masked, phone_masked=p.case.phone_masked,
            phone_sealed=p.phone_sealed, lookup_code_sealed=p.lookup_code_sealed, org=p.case.org),
            p.case.case_no, center_id) for p in chunk])
        if progress is not None:
            progress("write", total // 2 + (start + len(chunk)) // 2, total)
    await _note_fallback(session, ctx.calendar, prepared)
    for kind, n in Tally(p.case.kind for p in prepared).items():
        at_commit(session, functools.partial(registry.CASES.labels(center_id, kind, "imported").inc, n))
    return import_id


async def _note_fallback(session: AsyncSession, calendar: WorkCalendar, prepared: list[Prepared]) -> None:
    """The "calendar missing for year Y" alert, as an acceptance raises it, for every year a clock counted."""
    if not prepared:
        return
    first = min(p.case.accepted_on for p in prepared)
    last = max(clock.local_date(p.case.legal_due_at) for p in prepared)
    years = sorted(calendar.fallback_years(within=range(first.year, last.year + 1)))
    if years:
        await calendar_service.note_fallback(session, calendar, years, first)


async def import_cases(session: AsyncSession, ctx: registry.Context, actor: Actor, center_id: str, raw: bytes,
                       fmt: Format, *, via: Literal["api", "cli"], charset: str = "utf-8", max_rows: int,
                       progress: Progress | None = None) -> tuple[int, list[Prepared]]:
    """Read, check and write an import; raises ImportRejected (nothing written) listing every problem."""
    rows, errors = read_rows(raw, fmt, charset)
    if not rows and not errors:
        errors = [RowError(0, "cases" if fmt == "json" else "body", "the file has no rows", "empty_import")]
    if len(rows) + len({e.row for e in errors}) > max_rows:
        raise ImportRejected([RowError(0, "cases" if fmt == "json" else "body",
                                       f"at most {max_rows} rows per import", "too_many_rows")])
    found = await lookups(session, center_id, rows)
    prepared, problems = check(ctx, center_id, rows, found, fmt, progress)
    errors += problems
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e.row))
    seal(ctx, prepared, progress)
    import_id = await write(session, ctx, actor, center_id, fmt, via, prepared, progress)
    prepared.sort(key=lambda p: p.row)
    return import_id, prepared
