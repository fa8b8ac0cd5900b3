"""Every query of the identity service."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from services.identity.models import DeviceKey, LoginFailure, RefreshToken, User, UserPhoto


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def lock_user(session: AsyncSession, user: User) -> None:
    """Row-lock the user and reload it: concurrent changes of its photo run (and publish) one after another."""
    await session.refresh(user, with_for_update=True)


async def get_photo(session: AsyncSession, user_id: str) -> UserPhoto | None:
    """The photo's type, size and hash; the image itself (deferred) is read by `photo_with_content`."""
    return await session.get(UserPhoto, user_id)


async def photo_with_content(session: AsyncSession, user_id: str) -> UserPhoto | None:
    """The photo with its image, all read by one statement (type, hash and bytes of the same upload)."""
    stmt = (select(UserPhoto).where(UserPhoto.user_id == user_id).options(undefer(UserPhoto.content))
            .execution_options(populate_existing=True))
    return (await session.scalars(stmt)).one_or_none()


async def delete_photo(session: AsyncSession, user_id: str) -> bool:
    """True if there was a photo to delete."""
    result = await session.execute(delete(UserPhoto).where(UserPhoto.user_id == user_id).returning(UserPhoto.user_id))
    return result.first() is not None


async def user_by_username(session: AsyncSession, username: str) -> User | None:
    return (await session.scalars(select(User).where(User.username == username))).one_or_none()


async def list_users(session: AsyncSession, centers: Sequence[str] | None) -> list[User]:
    stmt = select(User).order_by(User.username)
    if centers is not None:
        # the users the admin may manage: every centre of theirs among the admin's
        stmt = stmt.where(User.centers.contained_by(list(centers)))
    return list((await session.scalars(stmt)).all())


async def recent_failures(session: AsyncSession, user_id: str, since: datetime) -> int:
    stmt = select(func.count()).select_from(LoginFailure).where(
        LoginFailure.user_id == user_id, LoginFailure.failed_at > since)
    return int((await session.scalar(stmt)) or 0)


async def clear_failures(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id))


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def revoke_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    await session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                                     RefreshToken.revoked_at.is_(None)).values(revoked_at=now))


async def revoke_user_tokens(session: AsyncSession, user_id: str, now: datetime) -> None:
    await session.execute(update(RefreshToken).where(RefreshToken.user_id == user_id,
                                                     RefreshToken.revoked_at.is_(None)).values(revoked_at=now))


async def get_device_key(session: AsyncSession, key_id: str) -> DeviceKey | None:
    return await session.get(DeviceKey, key_id)


async def live_device_key_by_hash(session: AsyncSession, key_hash: str) -> DeviceKey | None:
    stmt = select(DeviceKey).where(DeviceKey.key_hash == key_hash, DeviceKey.revoked_at.is_(None))
    return (await session.scalars(stmt)).one_or_none()


async def list_device_keys(session: AsyncSession, centers: Sequence[str] | None) -> list[DeviceKey]:
    stmt = select(DeviceKey).order_by(DeviceKey.center_id, DeviceKey.created_at)
    if centers is not None:
        stmt = stmt.where(DeviceKey.center_id.in_(list(centers)))
    return list((await session.scalars(stmt)).all())
