"""The knowledge base's pages in a real browser (Debian's Chromium, driven by Playwright): a
real PDF and a real DOCX picked together, each with its own progress and status, becoming
ready; a file dropped on the drop zone; a scanned PDF failing with its reason in words; the
form without JavaScript; a document's details edited; an article written with its preview,
becoming ready and answering a customer; and the editor refused to whom may not write. Every
page passes axe-core and the pages write their screenshots for the docs."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import docx
import httpx
from fpdf import FPDF
from playwright.async_api import Page, expect
from sqlalchemy import text

from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import ask
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, Team, csrf_of, signed_in

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
INDEXED_MS = 60_000  # the worker parses, chunks and embeds in the background


def make_pdf(text_of_page: str | None, title: str = "Política de trocas") -> bytes:
    """A PDF of one page with this text (``None``: a drawing only, as a scan has no text)."""
    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    if text_of_page is None:
        pdf.rect(20, 20, 100, 60, style="F")
    else:
        try:
            pdf.add_font("DejaVu", fname=FONT)
            pdf.set_font("DejaVu", size=12)
        except (FileNotFoundError, RuntimeError):
            pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text_of_page)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Manual do cliente"
    document.add_heading("Garantia", level=1)
    document.add_paragraph("Todos os liquidificadores têm garantia de um ano contra defeitos de fabricação.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


RETURNS = "Você pode devolver um produto em até 30 dias após o recebimento, sem custo."


async def open_documents(page: Page) -> None:
    await page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Knowledge base").click()
    await expect(page.get_by_role("heading", level=1, name="Knowledge base")).to_be_visible()


async def test_a_pdf_and_a_docx_picked_together_each_show_progress_and_become_ready(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await open_documents(page)
    await assert_accessible(page)
    await page.get_by_label("Files").set_input_files(
        [
            {"name": "trocas.pdf", "mimeType": "application/pdf", "buffer": make_pdf(RETURNS)},
            {
                "name": "manual.docx",
                "mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "buffer": make_docx(),
            },
        ]
    )
    await page.get_by_role("button", name="Upload and index").click()
    uploads = page.locator("#upload-list li")
    await expect(uploads).to_have_count(2)
    for name in ("trocas.pdf", "manual.docx"):
        item = uploads.filter(has_text=name)
        await expect(item.locator(".doc-status")).to_have_text("Ready", timeout=INDEXED_MS)
        await expect(item.get_by_role("link", name=f"Open {name}")).to_be_visible()
    rows = page.locator("#document-rows tr")
    await expect(rows.filter(has_text="Política de trocas").locator(".doc-status")).to_have_text("Ready")
    await expect(rows.filter(has_text="Manual do cliente").locator(".doc-status")).to_have_text("Ready")
    await assert_accessible(page)
    await screenshot(page, "knowledge-documents")

    # a file dropped on the drop zone goes the same way
    await page.evaluate(
        """() => {
            const data = new DataTransfer();
            const text = "# Horário\\n\\nAbrimos das 9h às 18h.";
            data.items.add(new File([text], "horario.md", {type: "text/markdown"}));
            const zone = document.getElementById("drop-zone");
            for (const name of ["dragover", "drop"]) {
                const init = {dataTransfer: data, bubbles: true, cancelable: true};
                zone.dispatchEvent(new DragEvent(name, init));
            }
        }"""
    )
    dropped = page.locator("#upload-list li").filter(has_text="horario.md")
    await expect(dropped.locator(".doc-status")).to_have_text("Ready", timeout=INDEXED_MS)

    # the document's page: its chunks as the bot sees them, its version
    await rows.filter(has_text="Política de trocas").get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1, name="Política de trocas")).to_be_visible()
    chunks = page.locator(".chunks li")
    await expect(chunks.first).to_contain_text("devolver um produto em até 30 dias")
    await expect(chunks.first).to_contain_text("Portuguese")
    await expect(chunks.first).to_contain_text(re.compile(r"\d+ tokens"))
    versions = page.get_by_role("table", name="Versions")
    await expect(versions.get_by_role("row").nth(1)).to_contain_text("Adam Admin")
    await expect(versions.get_by_role("row").nth(1)).to_contain_text("Indexed")
    await assert_accessible(page)
    # re-indexed on request: queued, then ready again on the same page
    await page.get_by_role("button", name="Re-index").click()
    await expect(page.get_by_role("status")).to_contain_text("Queued for indexing again.")
    await expect(page.locator("#document-status")).to_have_text("Ready", timeout=INDEXED_MS)
    await expect(page.locator(".chunks li").first).to_contain_text("devolver um produto em até 30 dias")


async def test_a_scanned_pdf_fails_with_its_reason_in_words(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, team.admin.email, PASSWORD, "pt-BR")
    await page.goto("/app/knowledge")
    await page.get_by_label("Arquivos").set_input_files(
        [{"name": "digitalizado.pdf", "mimeType": "application/pdf", "buffer": make_pdf(None)}]
    )
    await page.get_by_role("button", name="Enviar e indexar").click()
    item = page.locator("#upload-list li").filter(has_text="digitalizado.pdf")
    await expect(item.locator(".doc-status")).to_have_text("Falhou", timeout=INDEXED_MS)
    reason = "Este PDF não tem texto que possamos ler (imagem digitalizada?)."
    await expect(item).to_contain_text(reason)
    row = page.locator("#document-rows tr").filter(has_text="digitalizado.pdf")
    await expect(row).to_contain_text(reason)
    await assert_accessible(page)
    # a file of a kind atende cannot read is refused at once, saying so
    await page.get_by_label("Arquivos").set_input_files(
        [{"name": "planilha.xlsx", "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04"}]
    )
    await page.get_by_role("button", name="Enviar e indexar").click()
    refused = page.locator("#upload-list li").filter(has_text="planilha.xlsx")
    await expect(refused).to_contain_text("Recusado")
    await expect(refused).to_contain_text("Este tipo de arquivo não pode ser lido")


async def test_without_javascript_the_form_sends_every_file_and_lists_the_outcome(
    live_server: str, team: Team
) -> None:
    async with signed_in(live_server, team.admin) as client:
        token = csrf_of((await client.get("/app/knowledge")).text)
        faq = "pergunta,resposta\nEntregam no sábado?,Sim.\n".encode()
        response = await client.post(
            "/app/knowledge/upload",
            data={"csrf_token": token, "urls": "ftp://example.com/x"},
            files=[
                ("files", ("faq.csv", faq, "text/csv")),
                ("files", ("tabela.xlsx", b"PK", "application/zip")),
            ],
        )
    assert response.status_code == 422  # one was refused; the other was taken
    sent = response.text.split('id="sent-heading"')[1].split("</section>")[0]
    assert "<strong>faq.csv</strong>" in sent and ">Queued</a>" in sent
    assert "This kind of file cannot be read." in sent.split("tabela.xlsx")[1]
    assert "Type a web address that starts with https:// or http://." in sent


async def test_a_documents_details_are_edited_and_expiring_ones_are_marked_and_filtered(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.goto("/app/knowledge")
    await page.get_by_label("Files").set_input_files(
        [{"name": "promo.md", "mimeType": "text/markdown", "buffer": "# Promoção\n\nFrete grátis.".encode()}]
    )
    await page.get_by_role("button", name="Upload and index").click()
    await expect(page.locator("#upload-list li .doc-status")).to_have_text("Ready", timeout=INDEXED_MS)
    await page.locator("#document-rows").get_by_role("link", name="Promoção").click()

    soon = (datetime.now(UTC) + timedelta(days=10)).date()
    await page.get_by_label("Tags").fill("frete, natal")
    await page.get_by_label("Product").fill("Liquidificador Turbo")
    await page.get_by_label("Audience").fill("customers")
    await page.get_by_label("Valid from").fill("2026-12-20")
    await page.get_by_label("Valid until").fill("2026-12-01")
    await page.get_by_role("button", name="Save details").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "The end of validity must not be before its start."
    )
    await expect(page.get_by_label("Valid until")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Product")).to_have_value("Liquidificador Turbo")  # kept as typed
    await assert_accessible(page)
    await page.get_by_label("Valid from").fill("")
    await page.get_by_label("Valid until").fill(soon.isoformat())
    await page.get_by_role("button", name="Save details").click()
    await expect(page.get_by_role("status")).to_contain_text("Document details saved.")
    await expect(page.get_by_text("Expires soon")).to_be_visible()
    await screenshot(page, "knowledge-document")
    async with runtime.db.transaction(team.company_id) as session:
        row = (
            await session.execute(
                text(
                    "SELECT tags, product, audience, valid_until FROM documents"
                    " WHERE company_id = :company AND source = 'promo.md'"
                ),
                {"company": team.company_id},
            )
        ).one()
    assert row[:3] == (["frete", "natal"], "Liquidificador Turbo", "customers")
    assert row[3].astimezone(UTC).date() in (soon, soon + timedelta(days=1))  # the day's end, company time

    await page.goto("/app/knowledge")
    await page.get_by_label("Validity").select_option(label="Expiring within 30 days")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#document-rows tr")).to_have_count(1)
    await expect(page.locator("#document-rows")).to_contain_text("Expires soon")
    await page.get_by_label("Validity").select_option(label="Expired")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#document-rows")).to_contain_text("No document matches these filters.")

    # delete, after a confirmation
    await page.goto("/app/knowledge")
    await page.locator("#document-rows").get_by_role("link", name="Promoção").click()
    await page.get_by_role("link", name="Delete…").click()
    await expect(page.get_by_role("heading", name="Delete “Promoção”?")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("button", name="Delete document").click()
    await expect(page.get_by_role("status")).to_contain_text("Document deleted")
    await expect(page.locator("#document-rows")).not_to_contain_text("Promoção")


async def test_an_article_is_written_with_a_preview_becomes_ready_and_answers(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.goto("/app/knowledge")
    await page.get_by_role("link", name="Articles").click()
    await page.get_by_role("link", name="Write an article").click()
    await expect(page.get_by_role("heading", level=1, name="Write an article")).to_be_visible()
    await page.get_by_label("Title").fill("Garantia estendida")
    body = page.get_by_label("Text (Markdown)")
    await body.focus()
    await page.keyboard.type(
        "## Como contratar a garantia estendida?\n\nA **garantia estendida** de dois anos custa R$ 49,90.\n"
    )
    preview = page.locator("#preview")
    await expect(preview.locator("strong")).to_have_text("garantia estendida")
    await expect(preview.get_by_role("heading", name="Como contratar a garantia estendida?")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "knowledge-article")
    await page.keyboard.type(
        '<script>document.title = "hacked"</script> <a href="javascript:alert(1)">x</a>\n'
    )
    await expect(preview.locator("a")).to_have_text("x")
    assert await preview.locator("script").count() == 0  # sanitised
    assert await preview.locator("a").get_attribute("href") is None
    assert await page.title() != "hacked"
    await page.get_by_role("button", name="Save and index").click()
    await expect(page.get_by_role("heading", level=1, name="Garantia estendida")).to_be_visible()
    await expect(page.locator("#document-status")).to_have_text("Ready", timeout=INDEXED_MS)
    await expect(page.locator(".chunks li").first).to_contain_text("dois anos custa R$ 49,90")

    # edited again: the editor opens its Markdown, a second version is recorded
    await page.get_by_role("link", name="Edit article").click()
    await expect(page.get_by_label("Text (Markdown)")).to_have_value(re.compile("R\\$ 49,90"))
    await page.get_by_label("Text (Markdown)").fill(
        "## Como contratar a garantia estendida?\n\nA garantia estendida de dois anos custa R$ 59,90."
    )
    await page.get_by_role("button", name="Save a new version").click()
    await expect(page.locator("#document-status")).to_have_text("Ready", timeout=INDEXED_MS)
    versions = page.get_by_role("table", name="Versions").get_by_role("row")
    await expect(versions).to_have_count(3)  # the heading row and two versions
    await expect(versions.nth(1)).to_contain_text("Indexed")

    # the bot answers from it
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=team.company_id, name="test"
        )
    async with httpx.AsyncClient(
        base_url=live_server, headers={"Authorization": f"Bearer {full}"}, timeout=30
    ) as client:
        body = await ask(client, "Quanto custa a garantia estendida?")
    assert "59,90" in body["reply"]["text"]
    assert body["reply"]["meta"]["citations"][0]["title"] == "Garantia estendida"


async def test_a_knowledge_gap_opens_the_editor_with_its_draft(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.goto("/app/knowledge/articles/new?title=Troca+de+voltagem&body=Trocamos+a+voltagem+na+loja.")
    await expect(page.get_by_label("Title")).to_have_value("Troca de voltagem")
    await expect(page.get_by_label("Text (Markdown)")).to_have_value("Trocamos a voltagem na loja.")
    await expect(page.locator("#preview")).to_contain_text("Trocamos a voltagem na loja.")


async def test_a_viewer_is_denied_the_knowledge_base_and_an_agent_reads_but_cannot_write(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.viewer.email, PASSWORD)
    await expect(
        page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Knowledge base")
    ).to_have_count(0)
    for path in ("/app/knowledge/articles/new", "/app/knowledge"):
        response = await page.goto(path)
        assert response is not None and response.status == 403
        await expect(page.get_by_role("heading", name="You cannot use this page")).to_be_visible()
        await expect(
            page.get_by_text(
                "This page needs the Admin role; you are Viewer."
                if "new" in path
                else "This page needs the Agent role; you are Viewer."
            )
        ).to_be_visible()
    await assert_accessible(page)

    agent = await new_page(open_context, live_server)
    await sign_in(agent, team.agent.email, PASSWORD)
    await open_documents(agent)
    await expect(agent.get_by_label("Files")).to_have_count(0)  # no upload form
    await agent.get_by_role("link", name="Articles").click()
    await expect(agent.get_by_role("link", name="Write an article")).to_have_count(0)
    response = await agent.goto("/app/knowledge/articles/new")
    assert response is not None and response.status == 403
