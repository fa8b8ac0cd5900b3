"""The document model of a printable notice: a title, its issuer, and a list of blocks (not case-specific)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Field:
    """One labelled value, e.g. 办件编号：320102-20260212-000001."""

    label: str
    value: str


@dataclass(frozen=True)
class Fields:
    """Labelled values, one a row, labels in a column of their own."""

    items: Sequence[Field]


@dataclass(frozen=True)
class Heading:
    """A section heading inside the notice (一、申请材料)."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    """Running text, wrapped to the page width; `indent` starts it with two full-width spaces (首行缩进)."""

    text: str
    indent: bool = True


@dataclass(frozen=True)
class Column:
    header: str
    width: float = 1.0  # relative to the other columns'


@dataclass(frozen=True)
class Table:
    """A ruled table with a header row (materials, fees); cells wrap."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[str]]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"a row of {len(row)} cells in a table of {len(self.columns)} columns")


@dataclass(frozen=True)
class QRCode:
    """A QR code of `data` (a URL), printed with its caption beside it."""

    data: str
    caption: str = ""


@dataclass(frozen=True)
class Signature:
    """The signature and stamp lines, right-aligned, above the document's date (承办人, 盖章)."""

    lines: Sequence[str] = ("（盖章）",)


Block = Fields | Heading | Paragraph | Table | QRCode | Signature


@dataclass(frozen=True)
class Document:
    """A notice: `issuer` (the centre) above the title, `number` under it (after `number_label`), the blocks, then `dated` (the
    date it is issued, printed as 2026年02月12日 under the signature) and a small `footer` on every page."""

    title: str
    issuer: str
    blocks: Sequence[Block] = field(default_factory=tuple)
    number: str | None = None
    number_label: str = "编号"  # printed before the number: 办件编号, 告知书编号 ...
    dated: date | None = None
    footer: str | None = None
    keywords: Sequence[str] = field(default_factory=tuple)  # PDF metadata only (not printed)


def chinese_date(d: date) -> str:
    """`2026-02-26` -> `2026年02月26日`, as the notices print dates."""
    return f"{d.year:04d}年{d.month:02d}月{d.day:02d}日"
