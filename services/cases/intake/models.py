"""Tables of cases II (intake): the imports of open cases from a previous system with the original case
numbers they keep, the service guide's downloadable files, and the centres' own settings. Imported by
services/cases/models.py so Base.metadata holds every table."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.cases.models import Base


class CaseImport(Base):
    """One import of open cases (a centre going live): who brought how many, when, from what."""

    __tablename__ = "case_imports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    imported_by: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    format: Mapped[str] = mapped_column(String(8), comment="csv | json")
    via: Mapped[str] = mapped_column(String(8), comment="api | cli")
    rows: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer, comment="cases already overdue at import")


class ImportedCase(Base):
    """An imported case's number in the previous system (legacy_no), once per centre, beside ours."""

    __tablename__ = "imported_cases"
    __table_args__ = (
        ForeignKeyConstraint(["case_no"], ["cases.case_no"]),
        ForeignKeyConstraint(["import_id"], ["case_imports.id"]),
        UniqueConstraint("case_no"),
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    legacy_no: Mapped[str] = mapped_column(String(64), primary_key=True, comment="the previous system's number")
    case_no: Mapped[str] = mapped_column(String(48))
    import_id: Mapped[int] = mapped_column(BigInteger, index=True)


class ItemFile(Base):
    """A downloadable file of an item's service guide (办事指南): a blank form (申请表) or a filled-in sample
    (示范文本), uploaded by the centre admin, served to the public as stored."""

    __tablename__ = "item_files"
    __table_args__ = (
        ForeignKeyConstraint(["center_id", "item_code"], ["items.center_id", "items.code"]),
        CheckConstraint("kind IN ('form', 'sample')", name="kind_known"),
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True, comment="the file name, as downloaded")
    kind: Mapped[str] = mapped_column(String(8), comment="form | sample")
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(32))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CenterSetting(Base):
    """A centre's own settings in the cases service: its compression target for promised limits (seeds: 30%
    or 50% faster than the legal limit); a centre without a row has CASES_COMPRESSION_TARGET_PERCENT."""

    __tablename__ = "center_settings"
    __table_args__ = (CheckConstraint("compression_target_percent IN (30, 50)", name="target_known"),)

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    compression_target_percent: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
