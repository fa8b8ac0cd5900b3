"""The read copies notify reaches people through: staff (user.upserted) and department heads
(department.upserted), their contacts sealed for notify, and the planner's lookups in them.

Both copies are ordered by the producer's outbox sequence (shared.events.consumer.upsert_read_copy): an event
re-sent, or arriving after a newer one of the same user or department, changes nothing. The sealed contacts are
stored as the events carry them and opened only at send time (services.notify.channels); the masked forms are
what the API and the delivery log show."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import Contact, DepartmentContact
from shared.auth import ALL_CENTERS, Role
from shared.events.catalog import DepartmentUpserted, UserDeactivated, UserUpserted
from shared.events.consumer import Handler, upsert_read_copy
from shared.events.envelope import Envelope
from shared.readcopy import table_of

CONTACTS = table_of(Contact)
DEPARTMENTS = table_of(DepartmentContact)


def _sequence(envelope: Envelope) -> int:
    if envelope.sequence is None:
        raise ValueError(f"{envelope.type} carries no outbox sequence: cannot order it")
    return envelope.sequence


async def copy_user(session: AsyncSession, envelope: Envelope) -> None:
    """user.upserted -> the staff contact (every field, the contacts sealed and masked as the event carries
    them), unless a newer event of that user was applied; user.deactivated -> the contact inactive, likewise."""
    sequence = _sequence(envelope)
    payload = envelope.payload()
    if isinstance(payload, UserDeactivated):
        # identity publishes user.upserted (inactive) with it; a deactivation of a user not copied yet has
        # nothing to turn off, and the upserted event that created the user comes with a lower sequence
        await session.execute(
            update(Contact)
            .where(Contact.id == payload.id, Contact.last_event_sequence < sequence)
            .values(active=False, updated_at=envelope.occurred_at, last_event_sequence=sequence))
        return
    assert isinstance(payload, UserUpserted)
    await upsert_read_copy(session, CONTACTS, {
        "id": payload.id, "display_name": payload.display_name, "role": payload.role,
        "centers": list(payload.centers), "department": payload.department,
        "email_masked": payload.email_masked, "email_sealed": payload.email_sealed,
        "phone_masked": payload.phone_masked, "phone_sealed": payload.phone_sealed,
        "active": payload.active, "updated_at": envelope.occurred_at, "last_event_sequence": sequence,
    })


async def copy_department(session: AsyncSession, envelope: Envelope) -> None:
    """department.upserted -> the department and its head's contacts, unless a newer event of it was applied."""
    sequence = _sequence(envelope)
    payload = envelope.payload()
    assert isinstance(payload, DepartmentUpserted)
    await upsert_read_copy(session, DEPARTMENTS, {
        "center_id": payload.center_id, "code": payload.code, "name": payload.name,
        "head_name": payload.head_name,
        "head_phone_masked": payload.head_phone_masked, "head_phone_sealed": payload.head_phone_sealed,
        "head_email_masked": payload.head_email_masked, "head_email_sealed": payload.head_email_sealed,
        "chief_rep": payload.chief_rep, "active": payload.active, "updated_at": envelope.occurred_at,
        "last_event_sequence": sequence,
    })


IDENTITY_HANDLERS: dict[str, Handler] = {"user.upserted": copy_user, "user.deactivated": copy_user}
CASES_HANDLERS: dict[str, Handler] = {"department.upserted": copy_department}


# --- the planner's lookups -----------------------------------------------------------------------------------

async def staff_of(session: AsyncSession, user_id: str) -> Contact | None:
    """The staff member's contact (a case's handler), or None if the user is unknown here or deactivated."""
    contact = await session.get(Contact, user_id)
    return contact if contact is not None and contact.active else None


async def hall_managers(session: AsyncSession, center_id: str) -> list[Contact]:
    """The centre's active hall managers (大厅管理员): the centre among their centres (or all centres)."""
    stmt = (select(Contact)
            .where(Contact.active, Contact.role == Role.HALL_MANAGER.value,
                   Contact.centers.overlap([center_id, ALL_CENTERS]))  # `&&`: the GIN index answers it
            .order_by(Contact.id))
    return list((await session.scalars(stmt)).all())


async def department(session: AsyncSession, center_id: str, code: str) -> DepartmentContact | None:
    """The centre's department (窗口单位) with its head's contacts, or None if unknown here or inactive."""
    found = await session.get(DepartmentContact, (center_id, code))
    return found if found is not None and found.active else None
