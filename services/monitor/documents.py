"""A sanction's notice (警告通知 / 通报批评) as a printable PDF, from the text the ladder wrote (one source for
what is sent and what is printed), through the shared document renderer (shared/documents)."""

from __future__ import annotations

from services.monitor.models import Sanction
from shared import clock
from shared.documents.model import Block, Document, Field, Fields, Paragraph, Signature

INDENT = "　　"


def sanction_document(sanction: Sanction, centre_name: str) -> Document:
    """The notice's lines as the ladder composed them: title, 文号, addressee, indented paragraphs, issuer,
    date (services/monitor/ladder.py `_notice`)."""
    lines = sanction.notice_text.split("\n")
    title = lines[0]
    addressee = next((line for line in lines[2:] if line and not line.startswith(INDENT)), "")
    paragraphs = [line.removeprefix(INDENT) for line in lines if line.startswith(INDENT)]
    blocks: list[Block] = [Paragraph(addressee, indent=False), *(Paragraph(p) for p in paragraphs),
                           Fields([Field("整改期限", f"{clock.local_date(sanction.rectification_due_at):%Y年%m月%d日}"),
                                   Field("抄送", "督查股" if f"supervision:{sanction.center_id}" in sanction.recipients
                                         else "")]),
                           Signature((f"{centre_name}电子监察", "（盖章）"))]
    return Document(title=title, issuer=centre_name, blocks=blocks, number=sanction.notice_no, number_label="文号",
                    dated=clock.local_date(sanction.issued_at),
                    footer=f"{sanction.notice_no}　{'通报批评' if sanction.level == 'criticism' else '警告'}",
                    keywords=(sanction.notice_no, sanction.department))
