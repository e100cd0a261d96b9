"""Webmail's reading (issue #13), on the services IMAP uses (``mailstore``, ``folders``), so what a browser
does an IMAP client sees at once and the other way round: the folders with their counts, a page of a
folder's messages newest first (the server's SORT), one message opened (marked \\Seen as FETCH BODY[] would),
its parts.

A message is rendered in a worker thread: its MIME structure (codec.mime, bounded), the text of its first
text/plain part (every charset the codec decodes: GB2312, GBK, GB18030, Big5, UTF-8 …), its first text/html
part cleaned with nh3 (no script, no event handler, no form, no style, only http/https/mailto/cid links;
the page shows it in a sandboxed frame under a policy that loads nothing from elsewhere), and its
attachments (every other leaf, with a safe file name)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import unquote

import css_inline
import nh3

from dizimail.codec.imap.searchkeys import And, Body, DateKey, Header, SearchKey, Text
from dizimail.codec.mime.structure import Part, parse_structure
from dizimail.codec.mime.text import addresses, header_raw_text, header_text, part_content
from dizimail.codec.mime.transfer import decode_transfer
from dizimail.model.errors import Conflict, InvalidInput, NotFound
from dizimail.model.types import Account
from dizimail.services.folders import DELIMITER, Folders
from dizimail.services.mailstore import Mailstore
from dizimail.services.selected import SelectedMailbox
from dizimail.services.threads import ThreadNode

PAGE = 50
MAX_QUERY = 200  # characters of a search
SEARCH_FIELDS: dict[str, Callable[[str], SearchKey]] = {
    "text": Text, "body": Body, "from": lambda q: Header("FROM", q), "to": lambda q: Header("TO", q),
    "subject": lambda q: Header("SUBJECT", q)}
FOLDER_ACTIONS = ("create", "rename", "delete", "subscribe", "unsubscribe", "empty")
MAX_AT_ONCE = 1000  # messages one action changes
MAX_HEAD = 256 << 10  # octets of a header section read for its addresses when no blank line ends it
THREAD_CACHE = 8  # folders whose threads are kept (the most recently threaded; 100,000 messages ≈ 10 MB)
MAX_CONVERSATION = 50  # messages of a conversation shown on its page
LIVE_BEAT = 15.0  # seconds between the live stream's keep-alives
LIVE_FOR = 300.0  # seconds one live stream lasts (the browser reconnects: its session is checked again)
LIVE_MAX = 8  # live streams (browser tabs) of one account at once
LIST_FIELDS = ("FROM", "SUBJECT", "DATE")
TEXT_LIMIT = 2_000_000  # characters of a text part shown
HTML_LIMIT = 2_000_000
SPECIAL_ORDER = {"\\Drafts": 1, "\\Sent": 2, "\\Junk": 3, "\\Trash": 4, "\\Archive": 5}
HTML_TAGS = nh3.ALLOWED_TAGS | {"font", "big", "center"}
_LAYOUT = {"style", "align", "valign", "width", "height", "bgcolor", "border", "cellpadding", "cellspacing"}
HTML_ATTRIBUTES = {tag: set(nh3.ALLOWED_ATTRIBUTES.get(tag, ())) | {"style"} for tag in HTML_TAGS} | {
    tag: set(nh3.ALLOWED_ATTRIBUTES.get(tag, ())) | _LAYOUT for tag in ("table", "tr", "td", "th", "tbody", "thead", "img")
} | {"font": {"style", "color", "face", "size"}, "a": {"href", "title", "style"}}
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "text-align", "text-decoration", "text-transform", "text-indent", "letter-spacing", "vertical-align",
    "white-space", "width", "max-width", "min-width", "height", "max-height", "min-height", "display", "float",
    "clear", "list-style", "list-style-type", "table-layout", "border-collapse", "border-spacing", "word-break",
    "overflow-wrap", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "padding",
    "padding-top", "padding-right", "padding-bottom", "padding-left", "border", "border-top", "border-right",
    "border-bottom", "border-left", "border-color", "border-width", "border-style", "border-radius"}
URL_SCHEMES = {"http", "https", "mailto", "cid"}  # cid: only as an <img> of the message, made a data: URL
INLINE_BUDGET = 100_000_000  # octets of CSS × elements up to which a message's CSS is inlined (≈ 0.3 s)
_REMOTE = re.compile(r"""(?:src=["']?|url\(\s*["']?)https?:""", re.IGNORECASE)
_STYLE_BLOCK = re.compile(r"<style[^>]{0,500}>([^<]{0,1000000})", re.IGNORECASE)
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False, keep_link_tags=False)
MAX_INLINE_IMAGE = 1 << 20  # octets of one inline (cid:) image shown in the message
MAX_INLINE_IMAGES = 8 << 20  # octets of them all
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"), (b"RIFF", "image/webp"))
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


@dataclass(frozen=True)
class FolderView:
    name: str
    special_use: str | None
    total: int
    unseen: int
    subscribed: bool = True


@dataclass(frozen=True)
class Listed:
    uid: int
    date: float
    sender: str  # the display name, else the address
    subject: str
    size: int
    seen: bool
    flagged: bool
    folder: str = ""  # where it is (a search of every folder lists several)


@dataclass(frozen=True)
class Search:
    """What the search box asks: ``words`` in ``within`` (text, from, to, subject, body), received from
    ``since`` and before ``before`` (days), only mail with attachments, in one folder or ``everywhere``
    (every folder but Trash and Junk)."""

    words: str = ""
    within: str = "text"
    since: date | None = None
    before: date | None = None
    attachment: bool = False
    everywhere: bool = False

    def key(self) -> SearchKey | None:
        keys: list[SearchKey] = []
        if self.words.strip():
            keys.append(SEARCH_FIELDS.get(self.within, SEARCH_FIELDS["text"])(self.words.strip()[:MAX_QUERY]))
        if self.since is not None:
            keys.append(DateKey("internal", "since", self.since))
        if self.before is not None:
            keys.append(DateKey("internal", "before", self.before))
        if self.attachment:  # what carries files: multipart/mixed (the search has no key for parts)
            keys.append(Header("CONTENT-TYPE", "multipart/mixed"))
        return None if not keys else keys[0] if len(keys) == 1 else And(tuple(keys))

    @property
    def active(self) -> bool:
        return self.key() is not None or self.everywhere


@dataclass(frozen=True)
class Attachment:
    index: int  # its place among the message's leaves (what :meth:`MailReader.part` takes)
    filename: str
    content_type: str
    size: int  # octets of its encoded body


@dataclass(frozen=True)
class Opened:
    uid: int
    subject: str
    sender: list[tuple[str, str]]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    date: str
    text: str
    html: str | None  # cleaned
    attachments: list[Attachment] = field(default_factory=list)
    flags: tuple[str, ...] = ()
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    message_id: str = ""
    references: str = ""
    bcc: list[tuple[str, str]] = field(default_factory=list)
    in_reply_to: str = ""
    spam_score: str = ""  # X-Spam-Score, as the content filter wrote it at delivery
    spam_report: tuple[str, ...] = ()  # X-Spam-Report's reasons
    remote_images: bool = False  # its HTML shows pictures from elsewhere (blocked until the user allows them)
    priority: str = ""  # "high" or "low" (X-Priority, Importance), "" normal
    receipt_to: str = ""  # the address a read receipt is asked for (Disposition-Notification-To, RFC 8098)
    send_at: float | None = None  # a saved draft's sending time (X-Dizimail-Send-At, written for Drafts only)


def shown_header(raw: bytes) -> dict[str, list[str]]:
    """Header fields decoded for the page (RFC 2047 words, 8-bit bytes), with the control characters a decoded
    word may hide (a line break in a name) made spaces: one field never reads as two, here or in a reply."""
    return {name: [_CONTROLS.sub(" ", v) for v in values] for name, values in header_text(raw).items()}


def people_of(raw: bytes, *names: str) -> dict[str, list[tuple[str, str]]]:
    """The address fields ``names`` (lower-case) as (display name, address) pairs: parsed before their
    encoded words are decoded (RFC 2047 §6.2), control characters in names made spaces."""
    fields = header_raw_text(raw)
    return {n: [(_CONTROLS.sub(" ", name), address) for value in fields.get(n, []) for name, address in
                addresses(value)][:200] for n in names}


def safe_filename(name: str, fallback: str) -> str:
    """A file name a browser may save: no path, no control or reserved characters, no direction tricks."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c) not in ("Cf", "Cc"))
    name = _UNSAFE_NAME.sub("_", name).strip(" .")[:150]
    return name or fallback


def _inlined(markup: str) -> str:
    """The message's own CSS (its <style> blocks) moved into style attributes, for nh3 to filter: newsletters
    keep their look. Never a remote stylesheet. Skipped (the styles dropped) when the CSS times the elements
    passes INLINE_BUDGET: matching selectors costs about that, and a hostile message sets both."""
    css = sum(len(m) for m in _STYLE_BLOCK.findall(markup[:HTML_LIMIT]))
    if not css or css * markup.count("<") > INLINE_BUDGET:
        return markup
    try:
        return _INLINER.inline(markup)
    except (css_inline.InlineError, ValueError):
        return markup


def clean_html(markup: str, images: dict[str, str] | None = None) -> str:
    """HTML mail with nothing that runs or reaches out: its CSS inlined, then nh3 (ammonia) keeps text markup,
    tables, links (http, https, mailto), images and the style properties of STYLE_PROPERTIES (no position,
    no z-index: nothing overlays); drops scripts, style blocks, event handlers, forms, frames and every other
    URL scheme. ``images``: Content-ID → a data: URL, what the message's own inline images (cid:) become."""
    def rewrite(tag: str, attribute: str, value: str) -> str | None:  # (after nh3's check of the URL's scheme)
        if value[:4].lower() != "cid:":
            return value
        return (images or {}).get(unquote(value[4:]).strip("<>")) if (tag, attribute) == ("img", "src") else None
    return nh3.clean(_inlined(markup), tags=HTML_TAGS, attributes=HTML_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True, attribute_filter=rewrite,
                     filter_style_properties=STYLE_PROPERTIES, clean_content_tags={"script", "style", "title"})


def _data_url(raw: bytes, part: Part) -> str | None:
    """An inline image of the message as a data: URL (PNG, JPEG, GIF, WebP whose bytes say so; never SVG)."""
    if part.body_end - part.body_start > MAX_INLINE_IMAGE * 4 // 3 + 4096:
        return None
    data = decode_transfer(raw[part.body_start:part.body_end], part.encoding)
    kind = image_type(data or b"")
    if kind is None or data is None or len(data) > MAX_INLINE_IMAGE:
        return None
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def image_type(data: bytes) -> str | None:
    """The image type the bytes themselves say (PNG, JPEG, GIF, WebP), whatever the message declares."""
    for magic, kind in IMAGE_MAGIC:
        if data.startswith(magic) and (kind != "image/webp" or data[8:12] == b"WEBP"):
            return kind
    return None


def _leaves(root: Part) -> list[Part]:
    return [p for p in root.walk() if not p.children and not p.is_multipart]


def _filename(part: Part) -> str:
    return part.disposition_params.get("filename") or part.params.get("name") or ""


def _render(raw: bytes) -> tuple[dict[str, list[str]], str, str | None, list[Attachment]]:
    """Off the event loop: header, text, cleaned HTML, attachments."""
    root = parse_structure(raw)
    head = shown_header(raw[root.header_start:root.body_start])
    text, html, markup = "", None, None
    attachments: list[Attachment] = []
    images: dict[str, str] = {}
    budget = MAX_INLINE_IMAGES
    leaves = _leaves(root)
    for part in leaves:
        if part.content_id and part.content_type.startswith("image/") and budget > 0:
            url = _data_url(raw, part)
            if url is not None:
                images[part.content_id.strip().strip("<>")] = url
                budget -= len(url)
    for index, part in enumerate(leaves):
        name = _filename(part)
        inline_text = part.content_type in ("text/plain", "text/html") and part.disposition != "attachment" \
            and not name
        if inline_text and part.subtype == "plain" and not text:
            text = part_content(raw, part, TEXT_LIMIT)
        elif inline_text and part.subtype == "html" and markup is None:
            markup = part_content(raw, part, HTML_LIMIT)
        else:
            attachments.append(Attachment(index, safe_filename(name, f"part-{index + 1}"), part.content_type,
                                          part.size))
    if markup is not None:
        html = clean_html(markup, images)
    return head, text, html, attachments


class MailReader:
    def __init__(self, mailstore: Mailstore, folders: Folders) -> None:
        self.mailstore = mailstore
        self.folders = folders
        self._live: dict[int, int] = {}  # account id → its live streams open
        self._thread_cache: OrderedDict[int, tuple[tuple[int, int, int], list[ThreadNode],
                                                   list[tuple[float, int, int]]]] = OrderedDict()

    async def changes(self, account: Account, beat: float = LIVE_BEAT, lasting: float = LIVE_FOR
                      ) -> AsyncGenerator[bool]:
        """The account's mail as it changes, from the Notifier IMAP IDLE listens to (new mail, flags and
        expunges in any folder, by any client; folders made, renamed, deleted): False at once (listening),
        then True on each change and False every ``beat`` seconds of quiet, for ``lasting`` seconds (then
        the browser asks again). At most LIVE_MAX at once per account: a further one raises InvalidInput."""
        if self._live.get(account.id, 0) >= LIVE_MAX:
            raise InvalidInput("too_many_requests", account.address)
        notifier = self.folders.notifier
        watch = notifier.watch(account.id)
        self._live[account.id] = self._live.get(account.id, 0) + 1
        try:
            notifier.set_mailboxes(watch, [b.id for b in await self.folders.list(account)])
            yield False
            end = asyncio.get_running_loop().time() + lasting
            while (left := end - asyncio.get_running_loop().time()) > 0:
                try:
                    await asyncio.wait_for(watch.ready.wait(), min(beat, left))
                except TimeoutError:
                    yield False
                    continue
                if watch.take().list_changed:
                    notifier.set_mailboxes(watch, [b.id for b in await self.folders.list(account)])
                yield True
        finally:
            notifier.unwatch(watch)
            self._live[account.id] -= 1
            if not self._live[account.id]:
                del self._live[account.id]

    async def act(self, account: Account, folder: str, uids: list[int], action: str, target: str = "") -> int:
        return await act(self.mailstore, self.folders, account, folder, uids, action, target)

    async def change_folder(self, account: Account, action: str, name: str, new: str = "") -> str:
        """A change to the user's folders, as IMAP's CREATE, RENAME, DELETE, SUBSCRIBE would make it (every
        client sees it at once): ``create`` ``new`` under ``name`` (\"\" for the top), ``rename`` ``name`` to
        the leaf ``new`` (in the same parent), ``delete`` ``name`` with its subfolders, ``subscribe``,
        ``unsubscribe``, ``empty`` (Trash and Junk only: every message expunged). INBOX and the special-use
        folders are neither renamed nor deleted here. The folder to show afterwards."""
        new = new.strip()
        if action not in FOLDER_ACTIONS:
            raise InvalidInput("bad_action", action)
        if action == "create":
            if not new or DELIMITER in new:
                raise InvalidInput("bad_mailbox_name", new)
            full = f"{name}{DELIMITER}{new}" if name else new
            made = await self.folders.create(account, full)
            await self.folders.subscribe(account, made.name, True)
            return made.name
        boxes = {b.name: b for b in await self.folders.list(account)}
        box = boxes.get(name)
        if box is None:
            raise NotFound("unknown_mailbox", name)
        if action in ("subscribe", "unsubscribe"):
            await self.folders.subscribe(account, name, action == "subscribe")
            return name
        if action == "empty":
            if box.special_use not in ("\\Trash", "\\Junk"):
                raise InvalidInput("bad_action", action)
            view = await self.mailstore.select(account, name, readonly=False)
            uids = list(view.uids)
            if uids:
                await self.mailstore.store(view, uids, "+", ("\\Deleted",))
                await self.mailstore.expunge_uids(view, uids)
            return name
        if name == "INBOX" or box.special_use:
            raise Conflict("special_folder", name)
        if action == "rename":
            if not new or DELIMITER in new:
                raise InvalidInput("bad_mailbox_name", new)
            parent = name.rpartition(DELIMITER)[0]
            full = f"{parent}{DELIMITER}{new}" if parent else new
            await self.folders.rename(account, name, full)
            await self.folders.subscribe(account, full, True)
            return full
        below = sorted((n for n in boxes if n.startswith(name + DELIMITER)), key=len, reverse=True)
        if any(boxes[n].special_use for n in below):
            raise Conflict("special_folder", name)
        for child in [*below, name]:  # delete: the folder with its subfolders, deepest first
            await self.folders.delete(account, child)
            await self.folders.subscribe(account, child, False)
        return "INBOX"

    async def folder_list(self, account: Account) -> list[FolderView]:
        """INBOX, the special-use folders, then the rest by name."""
        out = []
        for box in await self.folders.list(account):
            _info, status = await self.mailstore.status(account, box.name)
            out.append(FolderView(box.name, box.special_use, status.messages, status.unseen, box.subscribed))
        return sorted(out, key=lambda f: (f.name != "INBOX", SPECIAL_ORDER.get(f.special_use or "", 9), f.name))

    async def page(self, account: Account, folder: str, number: int = 1,
                   search: Search | None = None) -> tuple[int, list[Listed]]:
        """How many messages the folder holds (that match ``search``), and page ``number`` (1 first) of
        them, newest first. The search is the IMAP server's (services.search: Chinese words too), so the
        browser finds what a client's SEARCH finds. A search ``everywhere`` merges every folder's newest."""
        search = search or Search()
        if search.everywhere:
            return await self._everywhere(account, number, search)
        view = await self.mailstore.select(account, folder, readonly=True)
        key = search.key()
        uids = await self.mailstore.search(view, key) if key is not None else list(view.uids)
        ordered = await self.mailstore.sort(view, [(True, "DATE")], uids)
        start = max(0, number - 1) * PAGE
        return len(ordered), await self._listed(view, ordered[start:start + PAGE], folder)

    async def threads(self, account: Account, folder: str, number: int = 1) -> tuple[int, list[tuple[Listed, int]]]:
        """The folder as conversations (THREAD=REFERENCES, RFC 5256, as the IMAP server threads): how many, and
        page ``number`` of them, the most recently active first: each its newest message and its size."""
        view = await self.mailstore.select(account, folder, readonly=True)
        _trees, latest = await self._threads(view)
        start = max(0, number - 1) * PAGE
        chosen = latest[start:start + PAGE]
        listed = {m.uid: m for m in await self._listed(view, [u for _d, u, _n in chosen], folder)}
        return len(latest), [(listed[u], n) for _d, u, n in chosen if u in listed]

    async def _threads(self, view: SelectedMailbox) -> tuple[list[ThreadNode], list[tuple[float, int, int]]]:
        """The folder's thread trees, and each thread's (newest arrival, its UID, size), newest first; kept
        while the folder holds the same messages (its UIDVALIDITY, UIDNEXT and count), for THREAD_CACHE
        folders: threading 100,000 messages takes a second, paging through them should not."""
        uids = list(view.uids)
        key = (view.info.uidvalidity, view.uidnext, len(uids))
        cached = self._thread_cache.get(view.info.id)
        if cached is not None and cached[0] == key:
            self._thread_cache.move_to_end(view.info.id)
            return cached[1], cached[2]
        trees = await self.mailstore.thread(view, "REFERENCES", uids)
        entries = await view.load(uids)
        latest = []
        for tree in trees:
            members = [u for u in _members(tree) if u in entries]
            if members:
                newest = max(members, key=lambda u: entries[u].internal_date)
                latest.append((entries[newest].internal_date, newest, len(members)))
        latest.sort(reverse=True)
        self._thread_cache[view.info.id] = (key, trees, latest)
        while len(self._thread_cache) > THREAD_CACHE:
            self._thread_cache.popitem(last=False)
        return trees, latest

    async def conversation(self, account: Account, folder: str, uid: int) -> list[Opened]:
        """Every message of the conversation ``uid`` is in (THREAD=REFERENCES), oldest first, each opened
        (and so \\Seen); at most MAX_CONVERSATION, the newest."""
        view = await self.mailstore.select(account, folder, readonly=True)
        if not view.has(uid):
            raise NotFound("unknown_message", f"{folder} {uid}")
        for tree in (await self._threads(view))[0]:
            uids = _members(tree)
            if uid in uids:
                entries = await view.load(uids)
                ordered = sorted((u for u in uids if u in entries), key=lambda u: entries[u].internal_date)
                return [await self.open(account, folder, u) for u in ordered[-MAX_CONVERSATION:]]
        return [await self.open(account, folder, uid)]

    async def _listed(self, view: SelectedMailbox, uids: list[int], folder: str) -> list[Listed]:
        entries = await view.load(uids)
        out = []
        for uid in uids:
            entry = entries.get(uid)
            if entry is None:
                continue
            fields = await self.mailstore.header_fields(entry, "HEADER.FIELDS", LIST_FIELDS)
            head, sender = shown_header(fields), people_of(fields, "from")["from"]
            flags = view.flags_of(uid, entry.flags)
            out.append(Listed(uid, entry.internal_date, (sender[0][0] or sender[0][1]) if sender else "",
                              (head.get("subject") or [""])[0], entry.size, "\\Seen" in flags, "\\Flagged" in flags,
                              folder))
        return out

    async def _everywhere(self, account: Account, number: int, search: Search) -> tuple[int, list[Listed]]:
        """Every folder but Trash and Junk searched; the page's share of each folder's newest (by arrival),
        merged."""
        key, wanted, total = search.key(), max(1, number) * PAGE, 0
        found: list[tuple[float, str, SelectedMailbox, int]] = []
        for box in await self.folders.list(account):
            if box.special_use in ("\\Trash", "\\Junk"):
                continue
            view = await self.mailstore.select(account, box.name, readonly=True)
            uids = await self.mailstore.search(view, key) if key is not None else list(view.uids)
            total += len(uids)
            newest = (await self.mailstore.sort(view, [(True, "ARRIVAL")], uids))[:wanted]
            entries = await view.load(newest)
            found += [(entries[u].internal_date, box.name, view, u) for u in newest if u in entries]
        found.sort(key=lambda f: f[0], reverse=True)
        out = []
        for _date, name, view, uid in found[wanted - PAGE:wanted]:
            out += await self._listed(view, [uid], name)
        return total, out

    async def open(self, account: Account, folder: str, uid: int) -> Opened:
        """The message, marked \\Seen (as FETCH BODY[] would: RFC 3501 §6.4.5)."""
        view = await self.mailstore.select(account, folder, readonly=False)
        entry = (await view.load([uid])).get(uid) if view.has(uid) else None
        if entry is None:
            raise NotFound("unknown_message", f"{folder} {uid}")
        raw = await self.mailstore.read_message(entry)
        head, text, html, attachments = await asyncio.to_thread(_render, raw)
        people = people_of(raw[:raw.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in raw else raw[:MAX_HEAD],
                           "from", "to", "cc", "bcc", "reply-to", "disposition-notification-to").__getitem__
        flags = view.flags_of(uid, entry.flags)
        if "\\Seen" not in flags:
            await self.mailstore.store(view, [uid], "+", ("\\Seen",))
            flags = (*flags, "\\Seen")
        return Opened(uid, (head.get("subject") or [""])[0], people("from"), people("to"), people("cc"),
                      (head.get("date") or [""])[0], text, html, attachments, flags, people("reply-to"),
                      (head.get("message-id") or [""])[0][:998], " ".join(head.get("references") or [])[:8000],
                      people("bcc"), (head.get("in-reply-to") or [""])[0][:998],
                      (head.get("x-spam-score") or [""])[0][:10],  # ours: forged ones go at ingest
                      tuple(r.strip() for r in (head.get("x-spam-report") or [""])[0].split(";") if r.strip())[:50],
                      html is not None and _REMOTE.search(html) is not None, _priority(head),
                      (people("disposition-notification-to") or [("", "")])[0][1],
                      _number((head.get("x-dizimail-send-at") or [""])[0]))

    async def zipped(self, account: Account, folder: str, uid: int) -> tuple[bytes, str]:
        """Every attachment of a message in one zip archive, and the message's subject (for its name)."""
        view = await self.mailstore.select(account, folder, readonly=True)
        entry = (await view.load([uid])).get(uid) if view.has(uid) else None
        if entry is None:
            raise NotFound("unknown_message", f"{folder} {uid}")
        raw = await self.mailstore.read_message(entry)
        subject = (shown_header(await self.mailstore.header_fields(entry, "HEADER.FIELDS", ("SUBJECT",))).get(
            "subject") or [""])[0]
        return await asyncio.to_thread(_zip, raw), safe_filename(subject, "")[:80]

    async def part(self, account: Account, folder: str, uid: int, index: int) -> tuple[bytes, str, str]:
        """An attachment: (its decoded bytes, its declared type, a safe file name)."""
        view = await self.mailstore.select(account, folder, readonly=True)
        entry = (await view.load([uid])).get(uid) if view.has(uid) else None
        if entry is None:
            raise NotFound("unknown_message", f"{folder} {uid}")
        raw = await self.mailstore.read_message(entry)

        def pick() -> tuple[bytes, str, str] | None:
            leaves = _leaves(parse_structure(raw))
            if not 0 <= index < len(leaves):
                return None
            part = leaves[index]
            body = raw[part.body_start:part.body_end]
            data = decode_transfer(body, part.encoding)
            return (body if data is None else data), part.content_type, safe_filename(_filename(part),
                                                                                       f"part-{index + 1}")
        found = await asyncio.to_thread(pick)
        if found is None:
            raise NotFound("unknown_message", f"{folder} {uid} part {index}")
        return found


def _priority(head: dict[str, list[str]]) -> str:
    """"high", "low" or "" from X-Priority (1-2 high, 4-5 low) or Importance."""
    value = ((head.get("x-priority") or [""])[0].strip()[:1] or
             {"high": "1", "low": "5"}.get((head.get("importance") or [""])[0].strip().lower(), ""))
    return "high" if value in ("1", "2") else "low" if value in ("4", "5") else ""


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def _members(node: ThreadNode) -> list[int]:
    """The UIDs of a thread tree; iterative: a hostile References chain makes deep trees."""
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        if n.uid is not None:
            out.append(n.uid)
        todo += n.children
    return out


def _zip(raw: bytes) -> bytes:
    """The message's attachments in one zip: safe names, made unique (``a.pdf``, ``a (2).pdf``)."""
    out = io.BytesIO()
    taken: set[str] = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, part in enumerate(_leaves(parse_structure(raw))):
            name = _filename(part)
            if not name and part.content_type in ("text/plain", "text/html") and part.disposition != "attachment":
                continue  # the message's own text
            name = safe_filename(name, f"part-{index + 1}")
            stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
            n = 1
            while name.lower() in taken:
                n += 1
                name = f"{stem} ({n}){dot}{ext}"
            taken.add(name.lower())
            body = raw[part.body_start:part.body_end]
            data = decode_transfer(body, part.encoding)
            archive.writestr(name, body if data is None else data)
    return out.getvalue()


ACTIONS = {"read": ("+", "\\Seen"), "unread": ("-", "\\Seen"), "flag": ("+", "\\Flagged"), "unflag": ("-", "\\Flagged")}


async def act(mailstore: Mailstore, folders: Folders, account: Account, folder: str, uids: list[int], action: str,
              target: str = "") -> int:
    """Change messages of a folder as an IMAP client would: ``read``, ``unread``, ``flag``, ``unflag`` (STORE),
    ``move`` to ``target`` (MOVE, RFC 6851: into Junk or out of it teaches the content filter, as over
    IMAP; ``spam``: to Junk, ``ham``: to INBOX), ``delete`` (moved to Trash; in Trash itself, or without one, expunged). How many it touched."""
    view = await mailstore.select(account, folder, readonly=False)
    uids = [u for u in dict.fromkeys(uids) if view.has(u)][:MAX_AT_ONCE]
    if not uids:
        return 0
    if action in ACTIONS:
        mode, flag = ACTIONS[action]
        changed, _failed = await mailstore.store(view, uids, mode, (flag,))
        return len(changed)
    if action in ("spam", "ham"):  # to Junk, or out of it to INBOX: the move teaches the content filter
        target = "INBOX" if action == "ham" else next(
            (b.name for b in await folders.list(account) if b.special_use == "\\Junk"), "Junk")
        action = "move"
    if action == "move":
        _box, pairs = await mailstore.copy(account, view, uids, target, True)
        return len(pairs)
    if action == "delete":
        trash = next((b.name for b in await folders.list(account) if b.special_use == "\\Trash"), None)
        if trash is not None and trash != view.info.name:
            _box, pairs = await mailstore.copy(account, view, uids, trash, True)
            return len(pairs)
        await mailstore.store(view, uids, "+", ("\\Deleted",))
        await mailstore.expunge_uids(view, uids)
        return len(uids)
    raise InvalidInput("bad_action", action)
