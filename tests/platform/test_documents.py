"""The PDF renderer of shared/documents (issue 22, acceptance "PDFs"): the text a PDF holds is what was printed
(pypdf extracts it), the Chinese face is embedded (a FontFile2 in every font of the page, no font left to the
viewer), and a page rendered to pixels (pdfium) shows the glyphs: two characters differ from each other and from
the face's .notdef box. Also the QR code's modules, page breaks with their footer, and the repertoire check."""

from __future__ import annotations

import io
import re
from datetime import date

import pypdf
import pypdfium2 as pdfium
import pytest
import segno

from shared.documents import (
    FONT_PATHS,
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
    missing_glyphs,
    render,
)

SCALE = 2  # pixels per PDF point when rendering a page


def notice(title: str = "承诺件告知单", **extra: object) -> Document:
    blocks = (Fields([Field("办件编号", "320102-20260212-000001"), Field("申请人", "欧阳娜娜"),
                      Field("承诺办结日期", chinese_date(date(2026, 2, 26)))]),
              Heading("已收材料"),
              Table([Column("序号", 0.6), Column("材料名称", 6)], [["1", "身份证"], ["2", "户口簿"]]),
              Paragraph("您的申请已受理。喆堃玥珺等名字中的字也能打印。"),
              QRCode("http://hall.example/ui/case?no=320102-20260212-000001", "扫码查询办理进度"),
              Signature(["承办人：王小明", "（盖章）"]))
    values: dict[str, object] = {"title": title, "issuer": "玄武区政务服务中心", "number": "320102-20260212-000001",
                                 "dated": date(2026, 2, 12), "blocks": blocks, **extra}
    return Document(**values)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def pixels(pdf: bytes, page: int = 0) -> tuple[int, int, bytes]:
    bitmap = pdfium.PdfDocument(pdf)[page].render(scale=SCALE, grayscale=True).to_pil().convert("L")
    return bitmap.width, bitmap.height, bitmap.tobytes()


def ink(pdf: bytes, top: float, bottom: float) -> int:
    """Dark pixels between `top` and `bottom` points from the page's top edge."""
    width, _, data = pixels(pdf)
    return sum(1 for v in data[int(top * SCALE) * width:int(bottom * SCALE) * width] if v < 128)


def test_the_text_printed_is_the_text_a_reader_extracts():
    text = text_of(render(notice()))
    for printed in ("承诺件告知单", "玄武区政务服务中心", "320102-20260212-000001", "2026年02月26日", "欧阳娜娜",
                    "喆堃玥珺", "身份证", "户口簿", "承办人：王小明", "2026年02月12日", "第 1 页 / 共 1 页"):
        assert printed in text, printed


def test_every_font_of_the_page_is_embedded():
    reader = pypdf.PdfReader(io.BytesIO(render(notice())))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert fonts, "no font on the page"
    for name, ref in fonts.items():
        font = ref.get_object()
        assert font["/Subtype"] == "/Type0", f"{name}: {font['/Subtype']} (a font the viewer would substitute)"
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        embedded = [k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in descriptor]
        assert embedded, f"{name} ({font['/BaseFont']}) is not embedded"
        assert len(descriptor[embedded[0]].get_object().get_data()) > 1000
        assert "NotoSansCJKSC" in font["/BaseFont"]


def test_each_pdf_embeds_only_the_glyphs_it_prints():
    """fpdf2 subsets the 7 MB of faces: a one-page notice stays small."""
    pdf = render(notice())
    assert len(pdf) < 120_000, len(pdf)
    assert sum(p.stat().st_size for p in FONT_PATHS) > 5_000_000  # the vendored faces: the whole repertoire


def _base_fonts(pdf: bytes) -> list[str]:
    fonts = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"]
    return sorted(str(f.get_object()["/BaseFont"]).split("+", 1)[1] for f in fonts.values())


def test_the_extended_face_is_embedded_only_for_a_text_that_needs_it():
    """A name with a character outside GB 2312 (喆) prints from the Extended face; a notice without one does
    not load it (fpdf2 parses every face it is given, for every PDF)."""
    common = render(Document(title="承诺件告知单", issuer="中心", blocks=(Paragraph("申请人张三"),)))
    rare = render(Document(title="承诺件告知单", issuer="中心", blocks=(Paragraph("申请人张喆"),)))
    assert _base_fonts(common) == ["NotoSansCJKSC"]
    assert _base_fonts(rare) == ["NotoSansCJKSC", "NotoSansCJKSC"]  # the two cuts of one face
    assert "申请人张喆" in text_of(rare)


def _title_only(char: str) -> bytes:
    return render(Document(title=char, issuer="中心"))


def _as_notdef(pdf: bytes) -> bytes:
    """The same page with the title's one glyph code replaced by one outside the font's CID map: every viewer then
    draws glyph 0, the face's .notdef box (what a missing glyph looks like)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    writer = pypdf.PdfWriter(clone_from=reader)
    page = writer.pages[0]
    content = page.get_contents()
    assert content is not None
    data = content.get_data()
    # the title's text object, stroked and filled (render._head), shows one 2-byte code
    title = re.compile(rb" Tr 0\.30 w \((?:[^\\)]|\\.){2}\) Tj", re.S)
    assert len(title.findall(data)) == 1, data[:400]
    content.set_data(title.sub(b" Tr 0.30 w (\x7f\x00) Tj", data))
    page.replace_contents(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_chinese_glyphs_render_as_glyphs_not_boxes():
    forever, country = _title_only("永"), _title_only("国")
    box = _as_notdef(forever)
    band = (60.0, 120.0)  # the title's line, in points from the top
    assert ink(forever, *band) > 200 and ink(country, *band) > 200  # something is drawn
    assert ink(box, *band) > 50  # and the .notdef box is drawn too: the comparison below means something
    assert pixels(forever) != pixels(country), "two different characters render the same"
    assert pixels(forever) != pixels(box), "永 renders as the font's .notdef box"
    assert pixels(country) != pixels(box), "国 renders as the font's .notdef box"


def test_the_qr_code_on_the_page_has_the_modules_of_its_url():
    url = "http://hall.example/ui/case?no=320102-20260212-000001"
    pdf = render(Document(title="告知单", issuer="中心", blocks=(QRCode(url),)))
    matrix = [list(row) for row in segno.make(url, error="m", micro=False).matrix_iter(scale=1, border=4)]
    width, _, data = pixels(pdf)
    # where render._qr draws it: at the left margin, under the head and its rule (which ends above 130 pt)
    mm = 72 / 25.4
    left = 20 * mm
    column = int((left + 4.5 * 30 * mm / len(matrix)) * SCALE)  # the first dark column: the finder's edge
    top_px = next(y for y in range(int(130 * SCALE), len(data) // width) if data[y * width + column] < 128)
    module = 30 * mm / len(matrix) * SCALE
    top = top_px - 4 * module  # the quiet zone is 4 modules
    wrong = 0
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            x, y = int(left * SCALE + (c + 0.5) * module), int(top + (r + 0.5) * module)
            wrong += (data[y * width + x] < 128) != bool(dark)
    assert wrong == 0, f"{wrong} of {len(matrix) ** 2} modules differ"


def test_a_long_table_breaks_onto_more_pages_with_the_footer_on_each():
    rows = [[str(i), f"材料{i}号"] for i in range(1, 121)]
    pdf = render(Document(title="清单", issuer="中心", footer="320102-20260212-000001",
                          blocks=(Table([Column("序号"), Column("名称", 4)], rows),)))
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 3
    for n, page in enumerate(pages, start=1):
        assert f"第 {n} 页 / 共 {len(pages)} 页" in page.extract_text()
        assert "320102-20260212-000001" in page.extract_text()
    assert "材料120号" in text_of(pdf)


def test_the_repertoire_check_names_what_the_face_cannot_print():
    assert missing_glyphs("欧阳娜娜 喆 堃 · ABC 123 （）、。") == []
    assert missing_glyphs("张𠀀三𠀀") == ["𠀀"]  # CJK Extension B is outside the vendored cut


def test_a_character_of_neither_face_prints_as_a_white_square_not_as_nothing(caplog):
    text = text_of(render(Document(title="告知书", issuer="中心", blocks=(Paragraph("申请人张𠀀三"),))))
    assert "申请人张□三" in text
    assert "𠀀" not in caplog.text  # nor named in the log: it may be a character of a name


def test_lines_break_between_chinese_characters_never_inside_a_number_nor_before_a_comma():
    paragraphs = tuple(Paragraph("汉" * k + "咨询电话025-84201234，案号320102-20260212-000001。" * 2) for k in range(40))
    text = text_of(render(Document(title="换行", issuer="中心", blocks=paragraphs)))
    assert text.count("025-84201234") == 80
    assert text.count("320102-20260212-000001") == 80
    lines = text.splitlines()
    assert not [line for line in lines if line[:1] in ("，", "。")]
    assert max(len(line) for line in lines) > 40  # full lines: the text does wrap at the page's width


def test_a_table_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="2 cells in a table of 3 columns"):
        Table([Column("a"), Column("b"), Column("c")], [["1", "2"]])


def test_dates_print_in_the_chinese_form():
    assert chinese_date(date(2026, 2, 6)) == "2026年02月06日"
