"""Printable notices as PDF: a document model of blocks and its renderer (fpdf2, Noto Sans SC embedded)."""

from shared.documents.model import (
    Block,
    Column,
    Document,
    Field,
    Fields,
    Heading,
    Paragraph,
    QRCode,
    Signature,
    Table,
    chinese_date,
)
from shared.documents.render import FONT_PATHS, covered, missing_glyphs, render, texts

__all__ = ["FONT_PATHS", "Block", "Column", "Document", "Field", "Fields", "Heading", "Paragraph", "QRCode",
           "Signature", "Table", "chinese_date", "covered", "missing_glyphs", "render", "texts"]
