"""Request and response models of the queue service."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CenterIn(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9]{2,32}$", description="centre code, e.g. 320102", examples=["320102"])
    name: str = Field(min_length=1, max_length=200, examples=["玄武区政务服务中心"])
    address: str | None = Field(default=None, max_length=300)


class CenterChange(BaseModel):
    """The new name and address of a centre (PUT replaces both)."""

    name: str = Field(min_length=1, max_length=200, examples=["玄武区政务服务中心"])
    address: str | None = Field(default=None, max_length=300)


class CenterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    address: str | None
    created_at: datetime
    updated_at: datetime
