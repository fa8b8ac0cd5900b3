"""Renders a Document (shared.documents.model) to a printable A4 PDF with fpdf2, the Chinese glyphs embedded.

The faces are the vendored Noto Sans SC cut (fonts/, see fontbuild.py): Common (GB 2312) always, Extended (the
rest of GBK) as fpdf2's fallback only for a document that needs it, since fpdf2 parses each face it is given for
every PDF. fpdf2 embeds in each PDF only the glyphs it prints (a TrueType subset, FontFile2), so a one-page
notice stays a few dozen kilobytes. A character outside both faces prints as a white square (□), never silently
dropped: `missing_glyphs` lets a caller check a text first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import TextMode, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from shared import clock
from shared.documents.model import (
    Block,
    Document,
    Fields,
    Heading,
    Paragraph,
    QRCode,
    Signature,
    Table,
    chinese_date,
)

COMMON_PATH = Path(__file__).parent / "fonts" / "NotoSansSC-Common.ttf"
EXTENDED_PATH = Path(__file__).parent / "fonts" / "NotoSansSC-Extended.ttf"
FONT_PATHS = (COMMON_PATH, EXTENDED_PATH)
FAMILY = "NotoSansSC"
EXTENDED = "NotoSansSCExt"
MARGIN = 20.0  # mm, on every side
BODY = 11.0  # pt
LINE = 6.2  # mm, a body line
PT = 25.4 / 72  # mm per point
QR_SIZE = 30.0  # mm: a phone reads it from a hand's length
HEADINGS = FontFace(emphasis="", fill_color=(232, 232, 232))  # no bold face: a grey header row
MISSING = "\u25a1"  # □, in GB 2312
PRODUCER = "hall-platform shared.documents (fpdf2)"

_cmaps: dict[Path, frozenset[int]] = {}


def _cmap(path: Path) -> frozenset[int]:
    if path not in _cmaps:
        face = TTFont(str(path), lazy=True)
        _cmaps[path] = frozenset(face.getBestCmap())
        face.close()
    return _cmaps[path]


def _outside(text: str, path: Path) -> list[str]:
    cmap, seen = _cmap(path), []
    for ch in text:
        if not ch.isspace() and ord(ch) not in cmap and ch not in seen:
            seen.append(ch)
    return seen


def covered(text: str) -> bool:
    """Whether every character of `text` has a glyph in the vendored faces (whitespace always does)."""
    return not missing_glyphs(text)


def missing_glyphs(text: str) -> list[str]:
    """The characters of `text` neither vendored face can print, in order, each once."""
    return [ch for ch in _outside(text, COMMON_PATH) if ord(ch) not in _cmap(EXTENDED_PATH)]


def texts(doc: Document) -> Iterable[str]:
    """Every text the document prints."""
    yield from (doc.title, doc.issuer, doc.number or "", doc.footer or "")
    for block in doc.blocks:
        if isinstance(block, Fields):
            for f in block.items:
                yield from (f.label, f.value)
        elif isinstance(block, Heading | Paragraph):
            yield block.text
        elif isinstance(block, Table):
            yield from (c.header for c in block.columns)
            for row in block.rows:
                yield from row
        elif isinstance(block, QRCode):
            yield block.caption
        elif isinstance(block, Signature):
            yield from block.lines


# a line may break between any two Chinese characters, never inside a run of Latin letters and digits (a phone
# or case number, a URL), nor before closing punctuation (避头: ，。、 stay at the end of the line before)
_UNIT = re.compile(r"[0-9A-Za-z][0-9A-Za-z\-.:/@*_#%+=?&]*|.", re.S)
_NO_LINE_START = frozenset("，。、；：？！）」』》〉】”’…,.;:?!)%·")


def wrap(pdf: FPDF, text: str, width: float, indent: float = 0.0) -> list[str]:
    """`text` broken into lines of at most `width` (mm) in the current font; `indent` on the first line only."""
    lines: list[str] = []
    avail = width - indent
    for part in text.split("\n"):
        units: list[str] = []
        for unit in _UNIT.findall(part):
            units.extend(unit if len(unit) > 1 and pdf.get_string_width(unit) > width else [unit])
        line, used = "", 0.0
        for unit in units:
            unit_width = pdf.get_string_width(unit)
            if line and used + unit_width > avail and unit not in _NO_LINE_START:
                lines.append(line.rstrip())
                line, used, avail = "", 0.0, width
                if unit.isspace():
                    continue
            line += unit
            used += unit_width
        lines.append(line.rstrip())
        avail = width
    return lines


class _Page(FPDF):
    def __init__(self, footer_text: str | None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer_text

    def normalize_text(self, text: str) -> str:
        # fpdf2 would leave a character of neither face out of the page, and name it in a warning (a log line
        # with a character of someone's name): print a white square (□) in its place instead, visibly
        missing = missing_glyphs(text)
        for ch in missing:
            text = text.replace(ch, MISSING)
        return super().normalize_text(text)

    def footer(self) -> None:
        self.set_y(-MARGIN + 6)
        self.set_font(FAMILY, size=8)
        self.set_text_color(110)
        text = f"第 {self.page_no()} 页 / 共 {{nb}} 页"
        if self._footer_text:
            text = f"{self._footer_text}    {text}"
        self.cell(0, 5, text, align="C")
        self.set_text_color(0)


def render(doc: Document) -> bytes:
    """The PDF of `doc`, A4 portrait."""
    pdf = _Page(doc.footer)
    pdf.set_creation_date(clock.now())
    pdf.set_title(doc.title)
    pdf.set_author(doc.issuer)
    pdf.set_creator(PRODUCER)
    pdf.set_producer(PRODUCER)
    if doc.keywords:
        pdf.set_keywords(" ".join(doc.keywords))
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    pdf.add_font(FAMILY, "", str(COMMON_PATH))
    if any(_outside(text, COMMON_PATH) for text in texts(doc)):
        pdf.add_font(EXTENDED, "", str(EXTENDED_PATH))
        pdf.set_fallback_fonts([EXTENDED])
    pdf.add_page()
    _head(pdf, doc)
    for block in doc.blocks:
        _block(pdf, block, doc)
    if doc.dated is not None and not any(isinstance(b, Signature) for b in doc.blocks):
        _dated(pdf, doc)
    return bytes(pdf.output())


def _head(pdf: FPDF, doc: Document) -> None:
    pdf.set_font(FAMILY, size=12)
    pdf.cell(0, 8, doc.issuer, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=20)
    # no bold face is vendored: the title is stroked as well as filled, which prints as a bold weight
    with pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=0.3):
        pdf.cell(0, 14, doc.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if doc.number:
        pdf.set_font(FAMILY, size=10)
        pdf.cell(0, 6, f"{doc.number_label}：{doc.number}", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.line(MARGIN, pdf.get_y() + 1, pdf.w - MARGIN, pdf.get_y() + 1)
    pdf.ln(5)


def _block(pdf: FPDF, block: Block, doc: Document) -> None:
    pdf.set_font(FAMILY, size=BODY)
    if isinstance(block, Fields):
        label_width = max((pdf.get_string_width(f.label + "：") for f in block.items), default=0) + 2
        width = pdf.w - 2 * MARGIN - label_width
        for f in block.items:
            for n, line in enumerate(wrap(pdf, f.value or "—", width)):
                pdf.set_x(MARGIN)
                pdf.cell(label_width, LINE, f.label + "：" if n == 0 else "")
                pdf.cell(width, LINE, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    elif isinstance(block, Heading):
        pdf.ln(2)
        pdf.set_font(FAMILY, size=BODY + 1)
        pdf.cell(0, LINE + 1, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    elif isinstance(block, Paragraph):
        indent = 2 * BODY * PT if block.indent else 0.0  # 首行缩进 two characters
        for n, line in enumerate(wrap(pdf, block.text, pdf.w - 2 * MARGIN, indent)):
            pdf.set_x(MARGIN + (indent if n == 0 else 0))
            pdf.cell(0, LINE, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    elif isinstance(block, Table):
        _table(pdf, block)
    elif isinstance(block, QRCode):
        _qr(pdf, block)
    elif isinstance(block, Signature):
        pdf.ln(3)
        for line in block.lines:
            pdf.cell(0, LINE + 1, line, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        _dated(pdf, doc)


def _dated(pdf: FPDF, doc: Document) -> None:
    if doc.dated is not None:
        pdf.set_font(FAMILY, size=BODY)
        pdf.cell(0, LINE + 1, chinese_date(doc.dated), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(pdf: FPDF, table: Table) -> None:
    pdf.ln(1)
    widths = tuple(c.width for c in table.columns)
    with pdf.table(col_widths=widths, line_height=LINE - 1.4, text_align="LEFT", first_row_as_headings=True,
                   headings_style=HEADINGS, padding=1.0, wrapmode=WrapMode.CHAR) as grid:
        head = grid.row()
        for column in table.columns:
            head.cell(column.header)
        for values in table.rows:
            row = grid.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)


def _dark_runs(matrix: Iterable[Iterable[int]]) -> Iterable[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules: one rectangle each, not one a module."""
    for r, row in enumerate(matrix):
        start: int | None = None
        cells = list(row)
        for c, dark in enumerate([*cells, 0]):
            if dark and start is None:
                start = c
            elif not dark and start is not None:
                yield r, start, c - start
                start = None


def _qr(pdf: FPDF, block: QRCode) -> None:
    qr = segno.make(block.data, error="m", micro=False)
    matrix = [list(row) for row in qr.matrix_iter(scale=1, border=4)]
    size = len(matrix)
    if pdf.will_page_break(QR_SIZE + 4):
        pdf.add_page()
    x, y = MARGIN, pdf.get_y() + 2
    module = QR_SIZE / size
    pdf.set_fill_color(0)
    for r, c, length in _dark_runs(matrix):
        # a hair wider than the module, so neighbouring rows print without white seams
        pdf.rect(x + c * module, y + r * module, length * module, module + 0.02, style="F")
    if block.caption:
        pdf.set_font(FAMILY, size=BODY - 1)
        pdf.set_y(y + 3)
        for line in wrap(pdf, block.caption, pdf.w - MARGIN - (x + QR_SIZE + 4)):
            pdf.set_x(x + QR_SIZE + 4)
            pdf.cell(0, LINE - 1, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), y + QR_SIZE + 2))
