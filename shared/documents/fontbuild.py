"""Builds the vendored Chinese faces (fonts/NotoSansSC-*.ttf) from Noto Sans CJK: run by hand, not at run time.

The face is Noto Sans CJK SC Regular (SIL OFL 1.1, fonts/OFL.txt), as Debian's ``fonts-noto-cjk`` ships it
(``apt-get download fonts-noto-cjk && dpkg -x fonts-noto-cjk_*.deb x``:
``x/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc``, face 2 is SC). The whole face is 65,535 glyphs
in a 19 MB collection; the notices need far less, so it is cut to a documented repertoire:

- every character the GBK code page encodes: all 20,902 CJK Unified Ideographs U+4E00-U+9FA5 (a superset of
  GB 2312's 6,763 and of the 8,105 of 通用规范汉字表, so the rarer characters of people's names print too),
  the GBK punctuation, symbols, fullwidth forms, the middle dot of transcribed names (·);
- printable ASCII, General Punctuation U+2000-U+206F, CJK Symbols and Punctuation U+3000-U+303F,
  Halfwidth and Fullwidth Forms U+FF00-U+FFEF.

The CFF outlines are converted to TrueType quadratic outlines (cu2qu, max error 1 unit of 1000) because
fpdf2 embeds a TrueType face as a plain Identity-H CIDFontType2 (FontFile2), which every viewer and
text extractor reads, whereas its CID-keyed CFF path writes an embedded encoding CMap that pypdf misreads.
fpdf2 subsets the face again for each PDF, so a PDF carries only the glyphs it prints.

The repertoire is saved as two faces: Common (GB 2312's 6,763 characters with the ASCII, punctuation and
fullwidth ranges, 2 MB) and Extended (the rest of GBK, 5 MB). fpdf2 parses the whole face it is given for
every PDF (a few hundred milliseconds for 22,000 glyphs): the renderer loads Extended only for a document that
has a character outside Common (a rarer character of a name), so most notices pay for 7,700 glyphs only.

    python -m shared.documents.fontbuild x/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

FONTS = Path(__file__).parent / "fonts"
COMMON_PATH = FONTS / "NotoSansSC-Common.ttf"
EXTENDED_PATH = FONTS / "NotoSansSC-Extended.ttf"
SC_FACE = 2  # the face index of Noto Sans CJK SC in NotoSansCJK-Regular.ttc
EXTRA_RANGES = ((0x20, 0x7E), (0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF))


def _encodable(codec: str) -> set[int]:
    keep: set[int] = set()
    for cp in range(0x20, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        try:
            chr(cp).encode(codec)
        except UnicodeEncodeError:
            continue
        keep.add(cp)
    return keep


def _extra() -> set[int]:
    return {cp for low, high in EXTRA_RANGES for cp in range(low, high + 1)}


def repertoire() -> set[int]:
    """The code points the two vendored faces keep together (see the module's docstring)."""
    return _encodable("gbk") | _extra()


def common_repertoire() -> set[int]:
    """The code points of the Common face: GB 2312 and the extra ranges."""
    return _encodable("gb2312") | _extra()


def _to_truetype(font: TTFont) -> None:
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        # CFF contours run counter-clockwise, TrueType's clockwise.
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["head"].glyphDataFormat = 0
    font["head"].indexToLocFormat = 1
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    # Format 2 keeps the glyph names in the file: fpdf2 loads the face per PDF, and deriving 22,000
    # names from the cmap each time (format 3) doubles the load.
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    font.sfntVersion = "\x00\x01\x00\x00"


def _options() -> subset.Options:
    options = subset.Options()
    options.layout_features = []  # horizontal Chinese text: no shaping, no vertical forms
    options.name_IDs = ["*"]  # keep the copyright, licence and trademark records
    options.name_languages = ["*"]
    options.notdef_outline = True  # the .notdef box, which the glyph test compares against
    options.hinting = False
    return options


def _cut(source: Path, keep: set[int], out: Path) -> int:
    font = TTFont(str(source))
    subsetter = subset.Subsetter(_options())
    subsetter.populate(unicodes=keep & set(font.getBestCmap()))
    subsetter.subset(font)
    font["post"].formatType = 2.0  # see _to_truetype
    font.save(str(out))
    return out.stat().st_size


def build(collection: Path, fonts: Path = FONTS) -> dict[str, int]:
    """Cut, convert and save the two faces; returns each file's size in bytes."""
    whole = fonts / "NotoSansSC-GBK.ttf.tmp"
    _build_whole(collection, whole)
    common = common_repertoire()
    try:
        return {COMMON_PATH.name: _cut(whole, common, fonts / COMMON_PATH.name),
                EXTENDED_PATH.name: _cut(whole, repertoire() - common, fonts / EXTENDED_PATH.name)}
    finally:
        whole.unlink()


def _build_whole(collection: Path, out: Path) -> int:
    """The whole repertoire as one TrueType face."""
    font = TTFont(str(collection), fontNumber=SC_FACE)
    cmap = font.getBestCmap()
    keep = {cp for cp in repertoire() if cp in cmap}
    subsetter = subset.Subsetter(_options())
    subsetter.populate(unicodes=keep)
    subsetter.subset(font)
    _to_truetype(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(out))
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("collection", type=Path, help="NotoSansCJK-Regular.ttc from fonts-noto-cjk")
    parser.add_argument("--fonts", type=Path, default=FONTS, help="the folder to write the two faces to")
    args = parser.parse_args(argv)
    for name, size in build(args.collection, args.fonts).items():
        print(f"{args.fonts / name}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
