"""PDF cleaning: remove what identifies the author, and everything a viewer would run or open
by itself (issue 5, "Attachments"; issue 13, finding 3).

Called by ``sanitize.clean_attachment``, which turns any parser exception into ``CannotClean``
(``_clean_pdf`` below turns ``EncryptedPdf`` into one). What is removed and kept is written in
docs/security-model.md ("Attachments: metadata removal", "PDF: actions, scripts and forms").

Active content is removed by one walk over every object of the file, not by a list of
places: a JavaScript action on a bookmark and an ``/AcroForm /XFA`` script came through a
cleaner that knew the catalogue, the names and the pages' annotations only (issue 13). The walk
looks at every slot of every dictionary, stream dictionary and array, direct or indirect,
reachable or not, each once (so cycles, shared objects and long ``/Next`` chains cost nothing
extra), and cuts from its slot any action other than GoTo, any embedded file, and any
annotation that plays or opens something. What is cut is no longer referenced, and qpdf
writes only referenced objects.
"""

from __future__ import annotations

import io
import re

import pikepdf

from portal.services.attachments.sanitize.core import CannotClean, CleanFailure

ALLOWED_ACTIONS = frozenset({"/GoTo"})
"""The only action kept: a jump inside the document (bookmarks, internal links, the table of
contents). URI actions are removed too: a click anywhere inside a link's rectangle, which can
be invisible and as large as the page, makes the viewer fetch an address the sender chose (in
browsers' viewers without asking), and that tells the sender when and from where the file was
opened, as a script would. A link's address that the page text shows is kept with the text."""

ACTION_TYPES = frozenset(
    {
        "/GoTo",
        "/GoToR",
        "/GoToE",
        "/GoToDp",
        "/Launch",
        "/Thread",
        "/URI",
        "/Sound",
        "/Movie",
        "/Hide",
        "/Named",
        "/SubmitForm",
        "/ResetForm",
        "/ImportData",
        "/JavaScript",
        "/SetOCGState",
        "/Rendition",
        "/Trans",
        "/GoTo3DView",
        "/RichMediaExecute",
    }
)
"""Every action type of PDF 2.0 (ISO 32000-2, 12.6.4). A dictionary whose ``/S`` is one of
these is an action wherever it hangs, and so is one of ``/Type /Action`` with any other ``/S``
(a viewer may know types the standard does not)."""

DROPPED_ANNOTATIONS = frozenset(
    {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
)
"""Annotations that carry a file, a sound, a film, Flash or a 3D model (whose stream may hold a
script in ``/OnInstantiate``): they are removed whole, wherever they are referenced."""

DROPPED_KEYS = (
    # Triggers: additional actions (page open and close, field keystroke, focus, calculate,
    # document will-close...) and the catalogue's open action run without a click, so they
    # go whatever their type.
    "/AA",
    "/OpenAction",
    # Scripts: a JavaScript action's text, the document-level scripts' name tree, XFA forms
    # (their XML carries scripts) and the flag that tells a viewer to render from XFA.
    "/JS",
    "/JavaScript",
    "/XFA",
    "/NeedsRendering",
    "/OnInstantiate",
    # Embedded and associated files, their name tree, and the portfolio view of them.
    "/EmbeddedFiles",
    "/EF",
    "/RF",
    "/AF",
    "/Collection",
    # Name trees of slide shows and of media renditions (what Rendition actions play).
    "/AlternatePresentations",
    "/Renditions",
    # Metadata: XMP on any object, and application data (/PieceInfo).
    "/Metadata",
    "/PieceInfo",
)
"""Keys removed from every dictionary and stream dictionary of the file."""

# Markup annotations (comments, highlights...) carry their author in /T; widgets use /T for
# the form field's name, which is content.
_ANNOTATION_AUTHOR_KEYS = ("/T", "/M", "/CreationDate")


class EncryptedPdf(Exception):
    """The file is encrypted (even with an empty password): its objects cannot be rewritten."""


def clean_pdf(data: bytes) -> bytes:
    """The file rewritten without its metadata and without its active content."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as exc:
        raise EncryptedPdf from exc
    with pdf:
        if pdf.is_encrypted:  # opened with an empty user password, still encrypted
            raise EncryptedPdf
        for key in ("/Info", "/ID"):
            if key in pdf.trailer:
                del pdf.trailer[key]
        remove_active_content(pdf)
        _remove_annotation_authors(pdf)
        out = io.BytesIO()
        # Streams are copied as they are (never decompressed), so a flate bomb inside costs
        # nothing; qpdf writes only objects reachable from the trailer, so whatever was
        # removed, and any earlier revision of the file, is left out.
        pdf.save(
            out,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
            compress_streams=False,
            deterministic_id=True,
        )
    return out.getvalue()


def remove_active_content(pdf: pikepdf.Pdf) -> None:
    """Remove ``DROPPED_KEYS`` from every dictionary of the file, direct or indirect, and cut
    from its dictionary slot or array every object ``is_dropped`` says.

    Every indirect object is looked at once, whether it is shared, part of a cycle or not
    reachable at all, and each one's direct objects are walked below it: references are not
    followed, so no chain or cycle can make the walk longer or deeper than the file. To keep
    the walk fast on files of many small objects (a 10 MiB file can hold a million), qpdf
    serialises each object first, and only an object whose serialisation names something the
    walk removes, or refers to an object it cuts or to an indirect name it looks for, is walked
    in Python; the same holds for each direct object inside."""
    # Indirect nulls, numbers and booleans come out as Python values: nothing to walk.
    objects = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Object)]
    texts = [_serialised(obj) for obj in objects]
    # /S, /Type and /Subtype may refer to an indirect name, which viewers resolve (pdf.js
    # does) but a serialisation shows as "12 0 R": a reference to such a name counts as the
    # name itself.
    names = {
        obj.objgen
        for obj in objects
        if obj._type_code == pikepdf.ObjectType.name_ and str(obj) in _DROPPABLE
    }
    dropped = {
        obj.objgen
        for obj, text in zip(objects, texts, strict=True)
        if (_MAYBE_DROPPED.search(text) or _refers_to(text, names)) and is_dropped(obj)
    }
    walk = _Walk(dropped, dropped | names, 2 * sum(len(text) for text in texts) + 2**20)
    walk.clean(pdf.trailer)
    for obj, text in zip(objects, texts, strict=True):
        if obj.objgen not in dropped and (_TOUCHED.search(text) or _refers_to(text, walk.marked)):
            walk.clean(obj)


def _serialised(obj: pikepdf.Object) -> bytes:
    if obj._type_code == pikepdf.ObjectType.stream:
        return obj.stream_dict.unparse(resolved=True)  # the dictionary, not the data
    return obj.unparse(resolved=True)


def _refers_to(text: bytes, objgens: set[tuple[int, int]]) -> bool:
    return bool(objgens) and any(
        (int(number), int(generation)) in objgens for number, generation in _REFERENCE.findall(text)
    )


class _Walk:
    def __init__(
        self, dropped: set[tuple[int, int]], marked: set[tuple[int, int]], budget: int
    ) -> None:
        self.dropped = dropped  # indirect objects to cut wherever they are referenced
        self.marked = marked  # those, and indirect names a viewer would read as a dropped type
        # Bytes of serialisation left for deciding which direct objects to walk: each level of
        # a nested object serialises all below it, so 100 levels around 8 MiB of numbers took
        # 103 s. Past the budget every direct container is walked, which costs one visit each.
        self.budget = budget

    def clean(self, root: pikepdf.Object) -> None:
        """``root`` and the direct objects inside it, walked with an explicit stack (nesting
        can be deeper than Python's recursion limit)."""
        stack = [root]
        while stack:
            obj = stack.pop()
            if obj._type_code == pikepdf.ObjectType.array:
                # One child at a time, from the end (a cut does not move the ones still to
                # come): a list of an array's children held 180 MiB more for 550,000 of them.
                for index in range(len(obj) - 1, -1, -1):
                    child = obj[index]
                    if not isinstance(child, pikepdf.Object):
                        continue  # numbers and booleans come out as Python values
                    if self._cut(child):
                        del obj[index]
                    elif self._walked(child):
                        stack.append(child)
                continue
            keys = set(obj.keys())
            for key in keys & _DROPPED_KEY_SET:
                del obj[key]
            for key in keys - _DROPPED_KEY_SET:
                child = obj[key]
                if not isinstance(child, pikepdf.Object):
                    continue
                if self._cut(child):
                    del obj[key]
                elif self._walked(child):
                    stack.append(child)

    def _cut(self, obj: pikepdf.Object) -> bool:
        if obj.is_indirect:
            return obj.objgen in self.dropped  # decided once for the whole file
        return is_dropped(obj)

    def _walked(self, obj: pikepdf.Object) -> bool:
        """Whether a direct child needs walking: a container whose serialisation names
        something the walk removes, or refers to an object that is cut or to an indirect name
        it looks for."""
        if obj.is_indirect or obj._type_code not in _CONTAINERS:
            return False  # an indirect object is looked at on its own
        if self.budget <= 0:
            return True
        text = obj.unparse()
        self.budget -= len(text)
        return _TOUCHED.search(text) is not None or _refers_to(text, self.marked)


def is_dropped(obj: pikepdf.Object) -> bool:
    """An action other than GoTo, an embedded file stream, or an annotation that carries a
    file or media (``DROPPED_ANNOTATIONS``)."""
    if obj._type_code not in (pikepdf.ObjectType.dictionary, pikepdf.ObjectType.stream):
        return False
    keys = obj.keys()
    kind = obj["/Type"] if "/Type" in keys else None
    action = obj["/S"] if "/S" in keys else None
    if isinstance(action, pikepdf.Name) and str(action) in ACTION_TYPES:
        return str(action) not in ALLOWED_ACTIONS
    if kind == pikepdf.Name.Action:
        return not (isinstance(action, pikepdf.Name) and str(action) in ALLOWED_ACTIONS)
    if kind == pikepdf.Name.EmbeddedFile:
        return True
    subtype = obj["/Subtype"] if "/Subtype" in keys else None
    return isinstance(subtype, pikepdf.Name) and str(subtype) in DROPPED_ANNOTATIONS


_CONTAINERS = frozenset(
    {pikepdf.ObjectType.array, pikepdf.ObjectType.dictionary, pikepdf.ObjectType.stream}
)
_DROPPED_KEY_SET = frozenset(DROPPED_KEYS)
# A name ends at white space or a delimiter (ISO 32000-2, 7.3.5); qpdf writes names in their
# plain form (/Java#53cript as /JavaScript).
_NAME_END = rb"(?![^\s()<>\[\]{}/%])"


def _names(names: frozenset[str] | set[str]) -> re.Pattern[bytes]:
    choices = b"|".join(re.escape(name[1:].encode()) for name in sorted(names, reverse=True))
    return re.compile(rb"/(?:" + choices + rb")" + _NAME_END)


_DROPPABLE = (ACTION_TYPES - ALLOWED_ACTIONS) | {"/Action", "/EmbeddedFile"} | DROPPED_ANNOTATIONS
_MAYBE_DROPPED = _names(_DROPPABLE)
"""Names without which ``is_dropped`` cannot be true of an object (its /S, /Type, /Subtype)."""
_TOUCHED = _names(_DROPPABLE | _DROPPED_KEY_SET)
"""Names without which the walk changes nothing inside an object, unless it refers to an
object that is cut."""
_REFERENCE = re.compile(rb"(\d+) (\d+) R" + _NAME_END)


def _remove_annotation_authors(pdf: pikepdf.Pdf) -> None:
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if not isinstance(annots, pikepdf.Array):
            continue
        kept = pikepdf.Array()
        for annot in annots:
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            if annot.get("/Subtype") != pikepdf.Name.Widget:
                for key in _ANNOTATION_AUTHOR_KEYS:
                    if key in annot:
                        del annot[key]
            kept.append(annot)
        page.obj["/Annots"] = kept


def _clean_pdf(data: bytes) -> bytes:
    # Metadata and active content (actions, scripts, XFA, embedded files) are removed by
    # clean_pdf, by one walk over the whole object graph (issue 13, finding 3).
    try:
        return clean_pdf(data)
    except EncryptedPdf as exc:
        raise CannotClean(CleanFailure.ENCRYPTED) from exc
