"""The centre admin's departments (窗口单位) and item catalogue (事项目录), and the public guide (办事指南).

Each change publishes the complete state of what changed (`department.upserted`, `item.upserted`:
reference events, kept for ever in the outbox). A department head's phone and e-mail are stored masked
and encrypted; the event carries them masked and sealed for notify, never in clear. Changing an item
never changes a case already accepted: a case copies its limits, stages and materials at acceptance.
Never commits: the request's unit of work does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.catalogue import repository
from services.cases.catalogue.schemas import (
    DepartmentIn,
    DepartmentPatch,
    ItemFileRef,
    ItemIn,
    ItemOut,
    ItemPatch,
    PublicItemOut,
)
from services.cases.models import Department, Item
from shared import clock
from shared.calendar.engine import WorkCalendar
from shared.errors import AppError, Conflict
from shared.events.catalog import DepartmentUpserted, ItemUpserted, Material, ProcedureStep, StageLimit
from shared.events.outbox import publish
from shared.pii import PersonalData, PersonalDataError

PRODUCER = "cases"
UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class Context:
    """What the rules need besides the session: the personal-data keys and the deployment's default
    compression target (a centre may set its own: `target_of`)."""

    pii: PersonalData
    compression_target_percent: int


def _invalid(detail: str, field: str, code: str = "validation_failed") -> AppError:
    return AppError(detail, field=field, status=422, code=code)


def _not_null(changes: Mapping[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in changes and changes[name] is None:
            raise _invalid(f"{name} cannot be null", name)


def _unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION


async def _check_center(session: AsyncSession, center_id: str) -> None:
    if not await repository.center_known(session, center_id):
        raise _invalid(f"centre {center_id} is not known here (the queue service has not announced it)",
                       "center_id", "unknown_center")


# departments (窗口单位)

def _set_contacts(ctx: Context, department: Department, changes: Mapping[str, Any]) -> None:
    """Store the head's phone / e-mail given in `changes` masked and encrypted (None clears it)."""
    for name, stored in (("head_phone", "head_phone"), ("head_email", "head_email")):
        if name not in changes:
            continue
        raw = changes[name]
        if raw is None:
            setattr(department, f"{stored}_masked", None)
            setattr(department, f"{stored}_encrypted", None)
            continue
        try:
            forms = ctx.pii.phone(raw) if name == "head_phone" else ctx.pii.email(raw)
        except PersonalDataError as exc:  # the reason only: the value itself is never echoed
            raise _invalid(f"{name}: {exc.reason}", name, "invalid_contact") from exc
        setattr(department, f"{stored}_masked", forms["masked"])
        setattr(department, f"{stored}_encrypted", forms["encrypted"].encode())


async def create_department(session: AsyncSession, ctx: Context, data: DepartmentIn) -> Department:
    await _check_center(session, data.center_id)
    if await repository.get_department(session, data.center_id, data.code) is not None:
        raise Conflict(f"department {data.code} already exists in centre {data.center_id}", field="code",
                       code="department_exists")
    now = clock.now()
    department = Department(center_id=data.center_id, code=data.code, name=data.name, head_name=data.head_name,
                            chief_rep=data.chief_rep, active=True, created_at=now, updated_at=now)
    _set_contacts(ctx, department, data.model_dump(include={"head_phone", "head_email"}))
    session.add(department)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same code created at the same instant by another request
        if not _unique_violation(exc):
            raise
        raise Conflict(f"department {data.code} already exists in centre {data.center_id}", field="code",
                       code="department_exists") from exc
    await _publish_department(session, ctx, department)
    return department


async def update_department(session: AsyncSession, ctx: Context, department: Department,
                            data: DepartmentPatch) -> Department:
    """Change a department (the caller loaded it locked). Deactivating it keeps its items and open cases;
    the public guide stops showing its items."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    _not_null(changes, ("name", "active"))
    _set_contacts(ctx, department, changes)
    for name in ("name", "head_name", "chief_rep", "active"):
        if name in changes:
            setattr(department, name, changes[name])
    department.updated_at = clock.now()
    await session.flush()
    await _publish_department(session, ctx, department)
    return department


def _sealed(ctx: Context, encrypted: bytes | None) -> str | None:
    return ctx.pii.seal_for_notify(ctx.pii.decrypt(encrypted.decode())) if encrypted else None


async def _publish_department(session: AsyncSession, ctx: Context, department: Department) -> None:
    await publish(session, PRODUCER, DepartmentUpserted(
        center_id=department.center_id, code=department.code, name=department.name,
        head_name=department.head_name,
        head_phone_masked=department.head_phone_masked, head_phone_sealed=_sealed(ctx, department.head_phone_encrypted),
        head_email_masked=department.head_email_masked, head_email_sealed=_sealed(ctx, department.head_email_encrypted),
        chief_rep=department.chief_rep, active=department.active),
        subject=f"{department.center_id}:{department.code}", center_id=department.center_id)


# the item catalogue (事项目录)

def meets_compression_target(promised: int, legal: int, target_percent: int) -> bool:
    """promised <= legal x (1 - target): in integers, so that 14 of 20 meets 30% exactly."""
    return promised * 100 <= legal * (100 - target_percent)


def speedup_percent(promised: int, legal: int) -> float | None:
    """提速率 of one item: how much faster than the legal limit the promise is, in %."""
    return round((legal - promised) * 100 / legal, 1) if legal else None


def _field_of(changed: set[str], preferred: str, other: str) -> str:
    """The field a cross-field problem names: the one the request set (preferred when it set both)."""
    return preferred if preferred in changed or other not in changed else other


ITEM_RULE_FIELDS = {"kind", "legal_limit_days", "promised_limit_days", "stages", "materials"}


def _check_item(state: Mapping[str, Any], changed: set[str]) -> None:
    """The rules of an item's limits, on its state after the change; `changed` says what the request set."""
    kind, legal, promised = state["kind"], state["legal_limit_days"], state["promised_limit_days"]
    if kind == "immediate" and promised != 0:
        raise _invalid(f"an immediate item (即办件) is done on the spot: its promised limit is 0, not {promised}",
                       _field_of(changed, "promised_limit_days", "kind"), "immediate_has_no_limit")
    if promised > legal:
        raise _invalid(f"the promised limit ({promised} working days) exceeds the legal limit ({legal})",
                       _field_of(changed, "promised_limit_days", "legal_limit_days"), "promised_over_legal")
    stages: list[StageLimit] = state["stages"]
    names: set[str] = set()
    for i, stage in enumerate(stages):
        if stage.name in names:
            raise _invalid(f"stage {stage.name} is listed twice", f"stages[{i}].name")
        names.add(stage.name)
    total = sum(stage.limit_days for stage in stages)
    if total > promised:
        # stages run one after another within the promise: together they cannot take longer than it
        raise _invalid(f"the stages' limits add up to {total} working days, more than the promised {promised}",
                       _field_of(changed, "stages", "promised_limit_days"), "stages_over_promised")
    codes: set[str] = set()
    for i, material in enumerate(state["materials"]):
        if material.code in codes:
            raise _invalid(f"material {material.code} is listed twice", f"materials[{i}].code")
        codes.add(material.code)


async def _check_department(session: AsyncSession, center_id: str, code: str) -> None:
    department = await repository.get_department(session, center_id, code)
    if department is None:
        raise _invalid(f"centre {center_id} has no department {code}", "department", "unknown_department")
    if not department.active:
        raise Conflict(f"department {code} is inactive: it takes no items", field="department",
                       code="department_inactive")


async def create_item(session: AsyncSession, ctx: Context, data: ItemIn) -> Item:
    """Add an item to a centre's catalogue; promised defaults to 0 for an immediate item."""
    promised = data.promised_limit_days
    if promised is None:
        if data.kind != "immediate":
            raise _invalid(f"a {data.kind} item needs its promised limit (承诺时限)", "promised_limit_days")
        promised = 0
    _check_item({"kind": data.kind, "legal_limit_days": data.legal_limit_days, "promised_limit_days": promised,
                 "stages": data.stages, "materials": data.materials}, ITEM_RULE_FIELDS)
    if await repository.get_item(session, data.center_id, data.code) is not None:
        raise Conflict(f"item {data.code} already exists in centre {data.center_id}", field="code",
                       code="item_exists")
    await _check_department(session, data.center_id, data.department)
    now = clock.now()
    item = Item(center_id=data.center_id, code=data.code, name=data.name, department=data.department,
                kind=data.kind, legal_limit_days=data.legal_limit_days, promised_limit_days=promised,
                stages=[s.model_dump(mode="json") for s in data.stages], warn_days=data.warn_days,
                max_extension_days=data.max_extension_days, forward_followup_days=data.forward_followup_days,
                special_limit_days=data.special_limit_days,
                materials=[m.model_dump(mode="json") for m in data.materials], fees=data.fees,
                legal_basis=data.legal_basis, conditions=list(data.conditions),
                procedure=[p.model_dump(mode="json") for p in data.procedure], fee_basis=data.fee_basis,
                service_objects=_distinct(data.service_objects), active=data.active, created_at=now,
                updated_at=now)
    session.add(item)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not _unique_violation(exc):
            raise
        raise Conflict(f"item {data.code} already exists in centre {data.center_id}", field="code",
                       code="item_exists") from exc
    await _publish_item(session, ctx, item)
    return item


async def update_item(session: AsyncSession, ctx: Context, item: Item, data: ItemPatch) -> Item:
    """Change an item (the caller loaded it locked). Cases already accepted keep the limits, stages and
    materials they were accepted with; only cases accepted afterwards follow the change."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    _not_null(changes, ("name", "department", "kind", "legal_limit_days", "promised_limit_days", "stages",
                        "warn_days", "max_extension_days", "forward_followup_days", "special_limit_days",
                        "materials", "conditions", "procedure", "service_objects", "active"))
    state: dict[str, Any] = {"kind": item.kind, "legal_limit_days": item.legal_limit_days,
             "promised_limit_days": item.promised_limit_days, "stages": stages_of(item),
             "materials": materials_of(item)}
    state |= {name: getattr(data, name) for name in state if name in changes}
    _check_item(state, set(changes))
    if "department" in changes and changes["department"] != item.department:
        await _check_department(session, item.center_id, changes["department"])
    for name in ("stages", "materials"):
        if name in changes:
            changes[name] = [x.model_dump(mode="json") for x in state[name]]
    if "procedure" in changes:
        changes["procedure"] = [p.model_dump(mode="json") for p in data.procedure or []]
    if "service_objects" in changes:
        changes["service_objects"] = _distinct(data.service_objects or [])
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = clock.now()
    await session.flush()
    await _publish_item(session, ctx, item)
    return item


def stages_of(item: Item) -> list[StageLimit]:
    return [StageLimit.model_validate(s) for s in item.stages]


def materials_of(item: Item) -> list[Material]:
    return [Material.model_validate(m) for m in item.materials]


def procedure_of(item: Item) -> list[ProcedureStep]:
    return [ProcedureStep.model_validate(p) for p in item.procedure]


def _distinct(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


async def target_of(session: AsyncSession, ctx: Context, center_id: str) -> int:
    """The centre's compression target: its own setting, else the deployment's default."""
    own = await repository.compression_target(session, center_id)
    return own if own is not None else ctx.compression_target_percent


def files_out(rows: list[dict[str, Any]]) -> list[ItemFileRef]:
    return [ItemFileRef.model_validate({k: v for k, v in row.items() if k != "item_code"}) for row in rows]


async def item_out(session: AsyncSession, ctx: Context, item: Item) -> ItemOut:
    """One item as staff see it, flagged against its centre's compression target, with its guide files."""
    target = await target_of(session, ctx, item.center_id)
    files = (await repository.item_files(session, item.center_id, [item.code])).get(item.code, [])
    return item_out_with(item, target, files)


def item_out_with(item: Item, target: int, files: list[dict[str, Any]]) -> ItemOut:
    return ItemOut(
        center_id=item.center_id, code=item.code, name=item.name, department=item.department,
        kind=item.kind,
        legal_limit_days=item.legal_limit_days, promised_limit_days=item.promised_limit_days,
        stages=stages_of(item), warn_days=item.warn_days, max_extension_days=item.max_extension_days,
        forward_followup_days=item.forward_followup_days, special_limit_days=item.special_limit_days,
        materials=materials_of(item), fees=item.fees, legal_basis=item.legal_basis,
        conditions=list(item.conditions), procedure=procedure_of(item), fee_basis=item.fee_basis,
        service_objects=list(item.service_objects), files=files_out(files), active=item.active,
        speedup_percent=speedup_percent(item.promised_limit_days, item.legal_limit_days),
        compression_target_percent=target,
        meets_compression_target=meets_compression_target(item.promised_limit_days, item.legal_limit_days, target),
        created_at=item.created_at, updated_at=item.updated_at)


async def _publish_item(session: AsyncSession, ctx: Context, item: Item) -> None:
    await publish_item(session, item, await target_of(session, ctx, item.center_id))


async def publish_item(session: AsyncSession, item: Item, target: int) -> None:
    """item.upserted: the item's full state, flagged against `target` (the centre's compression target)."""
    await publish(session, PRODUCER, ItemUpserted(
        center_id=item.center_id, code=item.code, name=item.name, department=item.department,
        kind=item.kind,
        legal_limit_days=item.legal_limit_days, promised_limit_days=item.promised_limit_days,
        stages=stages_of(item), warn_days=item.warn_days, max_extension_days=item.max_extension_days,
        forward_followup_days=item.forward_followup_days, special_limit_days=item.special_limit_days,
        materials=materials_of(item), fees=item.fees, legal_basis=item.legal_basis,
        meets_compression_target=meets_compression_target(item.promised_limit_days, item.legal_limit_days, target),
        active=item.active, conditions=list(item.conditions), procedure=procedure_of(item),
        fee_basis=item.fee_basis, service_objects=list(item.service_objects), compression_target_percent=target),
        subject=f"{item.center_id}:{item.code}", center_id=item.center_id)


# the public guide (办事指南)

def public_item(calendar: WorkCalendar, item: Item, department_name: str, today: date,
                files: list[dict[str, Any]]) -> PublicItemOut:
    """What the guide shows of an item: no person (the department head's contacts stay with staff, the
    uploader of a file too), and when a case accepted today would be due by the centre's calendar (the
    acceptance day is not counted)."""
    due = calendar.add_working_days(today, item.promised_limit_days, item.center_id)
    return PublicItemOut(
        center_id=item.center_id, code=item.code, name=item.name, department=item.department,
        department_name=department_name,
        kind=item.kind,
        legal_limit_days=item.legal_limit_days, promised_limit_days=item.promised_limit_days,
        stages=stages_of(item), materials=materials_of(item), fees=item.fees, legal_basis=item.legal_basis,
        conditions=list(item.conditions), procedure=procedure_of(item), fee_basis=item.fee_basis,
        service_objects=list(item.service_objects), files=files_out(files),
        speedup_percent=speedup_percent(item.promised_limit_days, item.legal_limit_days), today=today, due_date_if_accepted_today=due,
        due_at_if_accepted_today=calendar.due_at(today, item.promised_limit_days, item.center_id),
        fallback_years=sorted(calendar.fallback_years(within=range(today.year, due.year + 1))))
