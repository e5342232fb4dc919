"""E-mail: RFC 5322 messages (``.eml``, mbox-style files such as the SpamAssassin corpus) with
the standard library's ``email`` package, and Outlook ``.msg`` files with ``extract-msg``.

A message's text is its main headers (From, To, Cc, Date, Subject), its body (the plain part of
a ``multipart/alternative``, else the HTML part as text), then each attachment: text ones
decoded, documents (PDF, DOCX, ...) extracted by their own extractor, attached messages
(``message/rfc822``, an embedded ``.msg``) read the same way, up to ``max_depth`` levels.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from docsort.ingest.detect import detect
from docsort.ingest.extract import (
    Context,
    Part,
    Unreadable,
    decode_text,
    describe,
    extract_part,
    register_extractor,
)
from docsort.ingest.formats import html_to_text

HEADERS = ("From", "To", "Cc", "Date", "Subject")


@register_extractor("eml")
def extract_eml(data: bytes, context: Context) -> Part:
    # compat32: the default policy parses every header into objects, 80% of the time here
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    return Part(_message_text(message, context, context.depth))


def _header(message: Message, name: str) -> str:
    """A header's value with RFC 2047 words decoded (``=?utf-8?q?...?=``); the raw value when
    it is malformed."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, ValueError, UnicodeError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def _message_text(message: Message, context: Context, depth: int) -> str:
    lines = [f"{name}: {value}" for name in HEADERS if (value := _header(message, name))]
    body: list[str] = []
    _walk(message, context, depth, body)
    return "\n".join(lines) + ("\n\n" if lines else "") + "\n\n".join(b for b in body if b)


def _walk(part: Message, context: Context, depth: int, out: list[str]) -> None:
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if not isinstance(inner, Message):
            return
        if depth + 1 > context.limits.max_depth:
            context.note(f"an attached message nested over {context.limits.max_depth} deep skipped")
            return
        out.append("--- attached message ---\n" + _message_text(inner, context, depth + 1))
        return
    if part.is_multipart():
        children = part.get_payload()
        children = children if isinstance(children, list) else []
        if ctype == "multipart/alternative":
            plain = [c for c in children if c.get_content_type() == "text/plain"]
            children = plain[-1:] or children[-1:]  # the richest part is last; plain wins
        for child in children:
            if isinstance(child, Message):
                _walk(child, context, depth, out)
        return
    filename = part.get_filename()
    attached = part.get_content_disposition() == "attachment" or bool(filename)
    if ctype in ("text/plain", "text/html") and not attached:
        text = _text_of(part)
        out.append(html_to_text(text) if ctype == "text/html" else text)
        return
    if not attached and not ctype.startswith("text/"):
        return  # an inline image or the like
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes) or not payload:
        return
    out.append(_attachment(payload, filename or "attachment", ctype, context, depth))


def _text_of(part: Message) -> str:
    """A text part decoded: its transfer encoding undone, then its declared charset (an
    unknown or lying one: guessed from the bytes)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(payload or "")
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(payload)


def _attachment(payload: bytes, filename: str, ctype: str, context: Context, depth: int) -> str:
    """An attachment's text with a line naming it, or only that line when it is not text."""
    label = f"--- attachment: {' '.join(filename.split())[:200]} ---"
    if depth + 1 > context.limits.max_depth:
        context.note(f"attachment {filename!r} nested over {context.limits.max_depth} deep skipped")
        return label
    detected = detect(payload, Path(filename))
    if detected.type is None or detected.type == "image":
        context.note(f"attachment {filename!r} not read: {detected.reason or 'an image'}")
        return label
    inner = Context(context.limits, context.notes, depth + 1)
    try:
        text = extract_part(payload, detected, inner).text
    except Unreadable as exc:
        context.note(f"attachment {filename!r} not read: {exc}")
        return label
    except Exception as exc:  # a damaged attachment does not lose the message
        context.note(f"attachment {filename!r} not read: {describe(exc)}")
        return label
    finally:
        context.ocr_pages += inner.ocr_pages
    return f"{label}\n{text}"


# ----------------------------------------------------------------------------- Outlook .msg


@register_extractor("msg")
def extract_msg_file(data: bytes, context: Context) -> Part:
    import extract_msg

    try:
        message = extract_msg.openMsg(data, delayAttachments=False, strict=False)
    except Exception as exc:
        raise Unreadable(f"a damaged Outlook message ({describe(exc)})") from None
    try:
        return Part(_msg_text(message, context, context.depth))
    finally:
        message.close()


def _msg_header(message: Any, name: str) -> str | None:
    """A field of the message's transport headers (what Outlook kept of the SMTP ones)."""
    try:
        header = message.header
        return header.get(name) if header is not None else None
    except Exception:  # no or malformed transport headers
        return None


def _msg_text(message: Any, context: Context, depth: int) -> str:
    fields = {
        "From": getattr(message, "sender", None),
        "To": getattr(message, "to", None),
        "Cc": getattr(message, "cc", None),
        "Date": getattr(message, "date", None) or _msg_header(message, "Date"),
        "Subject": getattr(message, "subject", None),
    }
    lines = [f"{name}: {' '.join(str(v).split())}" for name, v in fields.items() if v]
    body = getattr(message, "body", None) or ""
    if not body.strip():
        html = getattr(message, "htmlBody", None)
        if html:
            body = html_to_text(decode_text(html) if isinstance(html, bytes) else str(html))
    chunks = [body]
    for attachment in getattr(message, "attachments", []) or []:
        data = getattr(attachment, "data", None)
        name = (
            getattr(attachment, "longFilename", None)
            or getattr(attachment, "shortFilename", None)
            or "attachment"
        )
        if isinstance(data, bytes):
            chunks.append(_attachment(data, name, "", context, depth))
        elif data is not None and hasattr(data, "body"):  # an embedded message
            if depth + 1 > context.limits.max_depth:
                context.note(
                    f"an attached message nested over {context.limits.max_depth} deep skipped"
                )
                continue
            chunks.append("--- attached message ---\n" + _msg_text(data, context, depth + 1))
    return "\n".join(lines) + ("\n\n" if lines else "") + "\n\n".join(c for c in chunks if c)
