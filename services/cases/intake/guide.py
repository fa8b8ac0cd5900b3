"""The service guide's side of intake (办事指南): a centre's compression target as its own setting (changing it
re-flags the items), and the downloadable forms and filled-in samples of an item, stored in the database.
Never commits."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.catalogue import repository
from services.cases.catalogue import service as catalogue
from services.cases.catalogue.schemas import ItemFileRef
from services.cases.intake.models import CenterSetting, ItemFile
from services.cases.intake.schemas import CenterSettingsOut
from services.cases.models import Item
from shared import clock
from shared.auth import Principal
from shared.errors import AppError, NotFound

# what a guide may offer for download, and how each such file begins (a file that does not is refused: the
# public downloads it, so it must be what it says)
CONTENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "application/ofd": (b"PK\x03\x04",),  # 版式文档 OFD: a zip package
    "application/msword": (b"\xd0\xcf\x11\xe0",),
    "application/vnd.ms-excel": (b"\xd0\xcf\x11\xe0",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


# the centre's compression target

async def center_settings(session: AsyncSession, ctx: catalogue.Context, center_id: str) -> CenterSettingsOut:
    row = await session.get(CenterSetting, center_id)
    if row is None:
        return CenterSettingsOut(center_id=center_id, compression_target=ctx.compression_target_percent,
                                 default=True, updated_by=None, updated_at=None)
    return CenterSettingsOut(center_id=center_id, compression_target=row.compression_target_percent,
                             default=False, updated_by=row.updated_by, updated_at=row.updated_at)


async def set_compression_target(session: AsyncSession, ctx: catalogue.Context, principal: Principal,
                                 center_id: str, target: int) -> CenterSettingsOut:
    """Set the centre's target and re-flag its items: each item whose meets_compression_target flips publishes
    item.upserted (its full state, judged against the new target). The items are locked, so an item change
    in flight publishes before, and judged against, the target it read."""
    # one change of a centre's settings at a time: the target read below is the one replaced
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('cases.center_settings:' || :c))"),
                          {"c": center_id})
    before = await catalogue.target_of(session, ctx, center_id)
    now = clock.now()
    upsert = insert(CenterSetting).values(center_id=center_id, compression_target_percent=target,
                                          updated_by=principal.subject, updated_at=now)
    await session.execute(upsert.on_conflict_do_update(
        index_elements=[CenterSetting.center_id],
        set_={"compression_target_percent": target, "updated_by": principal.subject, "updated_at": now}))
    reflagged: list[str] = []
    for item in await repository.list_items(session, center_id, for_update=True):
        was = catalogue.meets_compression_target(item.promised_limit_days, item.legal_limit_days, before)
        now_meets = catalogue.meets_compression_target(item.promised_limit_days, item.legal_limit_days, target)
        if was != now_meets:
            reflagged.append(item.code)
            await catalogue.publish_item(session, item, target)
    return CenterSettingsOut(center_id=center_id, compression_target=target, default=False,
                             updated_by=principal.subject, updated_at=now, reflagged=reflagged)


# the guide's files

def _ref(row: ItemFile) -> ItemFileRef:
    return ItemFileRef(name=row.name, kind=row.kind, content_type=row.content_type, size=row.size, sha256=row.sha256,
                       uploaded_at=row.uploaded_at)


def check_upload(content_type: str, content: bytes) -> str:
    """The upload's media type (parameters dropped), if the guide may offer it and the bytes are of it."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise AppError(f"a guide file is one of {', '.join(sorted(CONTENT_TYPES))}, not {media or 'untyped'}",
                       field="content-type", status=415, code="unsupported_file_type")
    if not content:
        raise AppError("the file is empty", field="body", status=422, code="empty_file")
    if not content.startswith(CONTENT_TYPES[media]):
        raise AppError(f"the file's bytes are not {media}", field="body", status=422, code="content_mismatch")
    return media


async def put_file(session: AsyncSession, principal: Principal, item: Item, name: str, kind: str,
                   content_type: str, content: bytes) -> tuple[ItemFileRef, bool]:
    """Store (or replace) one of the item's files; (its reference, whether it is new)."""
    media = check_upload(content_type, content)
    now = clock.now()
    values = {"kind": kind, "content_type": media, "size": len(content),
              "sha256": hashlib.sha256(content).hexdigest(), "content": content, "uploaded_by": principal.subject,
              "uploaded_at": now}
    stmt = insert(ItemFile).values(center_id=item.center_id, item_code=item.code, name=name, **values)
    created = await session.scalar(stmt.on_conflict_do_update(
        index_elements=[ItemFile.center_id, ItemFile.item_code, ItemFile.name], set_=values)
        .returning(text("xmax = 0")))
    row = ItemFile(center_id=item.center_id, item_code=item.code, name=name, **values)
    return _ref(row), bool(created)


async def delete_file(session: AsyncSession, item: Item, name: str) -> None:
    row = await session.get(ItemFile, (item.center_id, item.code, name))
    if row is None:
        raise NotFound(f"item {item.code} has no file {name}", field="name", code="unknown_file")
    await session.delete(row)


async def public_file(session: AsyncSession, center_id: str, code: str, name: str) -> ItemFile:
    """A file of an item the public guide shows (an active item of an active department)."""
    if not await repository.public_items(session, center_id, code):
        raise NotFound(f"centre {center_id} has no item {code} in its guide", field="code")
    row = await session.scalar(select(ItemFile).where(ItemFile.center_id == center_id, ItemFile.item_code == code,
                                                      ItemFile.name == name))
    if row is None:
        raise NotFound(f"item {code} has no file {name}", field="name", code="unknown_file")
    return row
