"""Request and response models of the identity service."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

UserRole = Literal["clerk", "chief_rep", "hall_manager", "supervisor", "center_admin", "system_admin"]
DeviceRole = Literal["kiosk", "display", "evaluator", "terminal"]
WINDOW_BOUND_DEVICES = frozenset({"evaluator", "terminal"})
DEPARTMENT_BOUND_ROLES = frozenset({"clerk", "chief_rep"})
WINDOW_STAFF_ROLES = frozenset({"clerk", "chief_rep"})  # who signs in at a window terminal, shown on its screen
CenterId = str


class LoginIn(BaseModel):
    """At a window terminal the window comes from the terminal's token (the bearer), never from here:
    a `window` (or any other unknown field) is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=256)


class RefreshIn(BaseModel):
    refresh_token: SecretStr = Field(min_length=1, max_length=200)


class KeyExchangeIn(BaseModel):
    key: SecretStr = Field(min_length=1, max_length=200, description="the device key shown at its creation")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds of wall time the access token lives")
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


class UserIn(BaseModel):
    """A new account. The photo has its own route (PUT /users/{user_id}/photo): `photo_url` is refused here,
    like every unknown field, so that a misspelt one never passes unnoticed."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{2,64}$", examples=["zhangsan"])
    password: SecretStr = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=100, examples=["张三"])
    post_title: str | None = Field(default=None, max_length=100, examples=["综合受理窗口"])
    role: UserRole
    centers: list[CenterId] = Field(min_length=1, max_length=50, examples=[["320102"]])
    department: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _bindings(self) -> "UserIn":
        if self.role in DEPARTMENT_BOUND_ROLES and not self.department:
            raise ValueError(f"a {self.role} is bound to a department: department is required")
        if self.role not in DEPARTMENT_BOUND_ROLES and self.department:
            raise ValueError(f"a {self.role} has no department")
        if "*" in self.centers and self.role != "system_admin":
            raise ValueError("only a system admin spans every centre")
        return self


class UserChange(BaseModel):
    """The new profile of a user (PUT replaces every field given here; unknown fields, `photo_url` among
    them, are refused: the photo has its own route)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=100)
    post_title: str | None = Field(default=None, max_length=100)
    centers: list[CenterId] = Field(min_length=1, max_length=50)
    department: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=20)


class PasswordIn(BaseModel):
    password: SecretStr = Field(min_length=10, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    display_name: str
    post_title: str | None
    photo_url: str | None
    role: str
    centers: list[str]
    department: str | None
    email_masked: str | None
    phone_masked: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class PhotoOut(BaseModel):
    """The stored photo of a user (the image itself is on the public route)."""

    photo_url: str = Field(examples=["/api/auth/public/users/5f0c.../photo?v=9b74c9897bac770f"])
    content_type: str
    size: int = Field(description="bytes")
    etag: str
    updated_at: datetime


class PublicUserOut(BaseModel):
    """What a window screen shows of the person at the window: nothing personal (no contact, no username)."""

    id: str
    display_name: str
    post_title: str | None
    photo_url: str | None
    active: bool


class DeviceKeyIn(BaseModel):
    role: DeviceRole
    center_id: CenterId = Field(pattern=r"^[A-Za-z0-9]{2,32}$")
    window: str | None = Field(default=None, max_length=32)
    label: str = Field(min_length=1, max_length=100, examples=["一楼取号机 1"])

    @model_validator(mode="after")
    def _bindings(self) -> "DeviceKeyIn":
        if self.role in WINDOW_BOUND_DEVICES and not self.window:
            raise ValueError(f"a {self.role} is bound to a window: window is required")
        if self.role not in WINDOW_BOUND_DEVICES and self.window:
            raise ValueError(f"a {self.role} is bound to its centre, not to a window")
        return self


class DeviceKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    center_id: str
    window: str | None
    label: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class DeviceKeyCreated(DeviceKeyOut):
    key: str = Field(description="the key itself: shown this once, never again")
