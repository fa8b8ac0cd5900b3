"""Tables of the identity service: staff accounts and their photos, failed logins, refresh tokens, device keys."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(Base):
    """A person who signs in: clerk (窗口人员), chief representative (首席代表), hall manager, supervisor, admins."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    post_title: Mapped[str | None] = mapped_column(String(100))
    # set from the uploaded photo (UserPhoto), versioned by its hash so a screen never shows a stale one
    photo_url: Mapped[str | None] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(32))
    centers: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    department: Mapped[str | None] = mapped_column(String(64))
    email_masked: Mapped[str | None] = mapped_column(String(200))
    email_encrypted: Mapped[str | None] = mapped_column(String(500))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    phone_encrypted: Mapped[str | None] = mapped_column(String(500))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserPhoto(Base):
    """A user's photo for the window screens (窗口屏), uploaded by an admin: JPEG or PNG, at most 2 MiB.

    Its own table, so that reading users never drags the images along."""

    __tablename__ = "user_photos"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # hex; the ETag and the photo URL's version
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """One wrong password for an account; ten within fifteen minutes lock it."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_user_id_failed_at", "user_id", "failed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    """One refresh token of a sign-in (its family); stored as a keyed hash, used at most once."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the window terminal the sign-in was made at (all three None for a plain sign-in); every rotation
    # of the family copies them, so a refreshed token keeps the window
    device_id: Mapped[str | None] = mapped_column(String(32))
    center_id: Mapped[str | None] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(32))


class DeviceKey(Base):
    """The key of a kiosk (取号机), display (综合屏), evaluator (评价器) or window terminal (窗口终端)."""

    __tablename__ = "device_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    center_id: Mapped[str] = mapped_column(String(32), index=True)
    window: Mapped[str | None] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(100))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
