"""XML batch files (interfaces.md §7, R-7.2.1): ``<batch park=.. period=.. producer=.. createdAt=.. records=n>``
holding one ``<record/>`` per reading whose attributes are the record fields. lxml ``iterparse``, streamed,
elements freed as read; no DTD is loaded, no entity resolved, nothing fetched, and a DOCTYPE refuses the file
outright (E9109: XXE, billion laughs). Anything but batch > record refuses the file (E9111), so deep nesting
stops at the third level. Pure."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from .common import FIELDS, META_KEYS, FileError, Meta, ParsedRecord, RowError, shape

_FIELD_SET = frozenset(FIELDS)


def _structure(line, en: str, zh: str) -> FileError:
    return FileError("E9111", line=line or "?", detail=en, detail_zh=zh)


def read_xml(path: str, meta: Meta) -> Iterator[ParsedRecord | RowError]:
    """Records and row errors of an XML batch file; ``meta`` from the <batch> attributes. File-level problems
    raise FileError (E9109 DOCTYPE, E9110 syntax, E9111 structure, E9121 empty)."""
    context = etree.iterparse(path, events=("start", "end"), resolve_entities=False, no_network=True,
                              load_dtd=False, dtd_validation=False, huge_tree=False, remove_comments=True,
                              remove_pis=True)
    depth = 0
    root = None
    try:
        for event, elem in context:
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    docinfo = elem.getroottree().docinfo
                    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
                        raise FileError("E9109")
                    if _local(elem.tag) != "batch":
                        raise _structure(elem.sourceline, f"the root element is <{_local(elem.tag)[:40]}>, not "
                                         "<batch>", f"根元素是 <{_local(elem.tag)[:40]}>，不是 <batch>")
                    for key in META_KEYS:
                        if key in elem.attrib:
                            meta.values[key] = elem.attrib[key]
                elif depth == 2:
                    if _local(elem.tag) != "record":
                        raise _structure(elem.sourceline, f"<{_local(elem.tag)[:40]}> inside <batch>",
                                         f"<batch> 内出现 <{_local(elem.tag)[:40]}>")
                else:
                    raise _structure(elem.sourceline, "elements nested inside <record>",
                                     "<record> 内嵌套了元素")
                continue
            depth -= 1
            if depth != 1:
                continue
            row = elem.sourceline or 0
            meta.data_rows += 1
            attrib = elem.attrib
            extra = [k for k in attrib if k not in _FIELD_SET]
            if extra:
                yield RowError(row, str(extra[0])[:40], "E9154", {"attribute": str(extra[0])[:40]},
                               etree.tostring(elem, encoding="unicode")[:500])
            else:
                yield shape(list(attrib.keys()), list(attrib.values()), row)
            # Free what was read: the element and the siblings before it.
            elem.clear(keep_tail=False)
            parent = elem.getparent()
            while elem.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        if root is None and ("Document is empty" in str(exc) or "no element found" in str(exc)):
            raise FileError("E9121") from None
        line = exc.lineno if exc.lineno else "?"
        msg = str(exc.msg if hasattr(exc, "msg") else exc)
        if "DOCTYPE" in msg or "Entity" in msg or "entity" in msg:
            raise FileError("E9109") from None
        raise FileError("E9110", line=line, detail=msg[:160]) from None
    if root is None:
        raise FileError("E9121")


def _local(tag) -> str:
    if not isinstance(tag, str):
        return "?"
    return tag.rsplit("}", 1)[-1]
