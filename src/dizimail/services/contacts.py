"""A user's address book (issue #13, the seed's 通讯录): personal contacts and groups, vCard (vobject) and CSV
import and export, "add the sender", and the completion the compose form asks for as the user types:
their contacts, their groups (each the addresses of its members), and the domain's directory (its active
users, read-only: the admin keeps it). Every call names the account; a user reaches only their own."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, replace

import vobject

from dizimail.interfaces.contacts import ContactStore
from dizimail.model.contacts import Contact, ContactGroup
from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.types import Account
from dizimail.services.accounts import AccountService, normalize_address

MAX_CONTACTS = 10_000  # per account
MAX_ROWS = 2 * MAX_CONTACTS  # rows or cards of one file read at most (the 5 MiB limit holds them anyway)
MAX_GROUPS = 200
MAX_IMPORT = 5 << 20  # octets of one vCard or CSV file
MAX_FIELD = 200
MAX_NOTE = 2000
COMPLETIONS = 10
IMPORT_BATCH = 1000  # contacts of an import stored in one transaction
CSV_COLUMNS = ("name", "email", "phone", "org", "note", "groups")
HEADERS = {  # what other address books call the columns (Outlook, Gmail, Thunderbird, Foxmail), lower-case
    "name": "name", "full name": "name", "display name": "name", "姓名": "name", "名称": "name",
    "email": "email", "e-mail": "email", "email address": "email", "e-mail address": "email",
    "primary email": "email", "e-mail 1 - value": "email", "电子邮件": "email", "邮箱": "email", "电子邮件地址": "email",
    "phone": "phone", "mobile phone": "phone", "phone 1 - value": "phone", "电话": "phone", "手机": "phone",
    "org": "org", "company": "org", "organization": "org", "organization 1 - name": "org", "公司": "org",
    "单位": "org", "note": "note", "notes": "note", "备注": "note", "groups": "groups", "group membership": "groups",
    "categories": "groups", "分组": "groups"}


@dataclass(frozen=True)
class Completion:
    label: str  # what the list shows
    value: str  # what goes into the field ("Name" <address>, or a group's addresses)
    source: str  # contact, group, directory


@dataclass(frozen=True)
class Imported:
    added: int
    refused: list[tuple[int, str]]  # (line or card number, why)


def _field(value: str, what: str, limit: int = MAX_FIELD) -> str:
    value = " ".join(value.split()) if limit == MAX_FIELD else value.replace("\r\n", "\n")
    if len(value) > limit or any(ord(c) < 0x20 and c not in "\n\t" for c in value):
        raise InvalidInput("bad_contact", f"{what}: at most {limit} characters, no control characters")
    return value.strip()


def checked(contact: Contact) -> Contact:
    """The contact with its fields made tidy, or InvalidInput (an address that is none, a field too long)."""
    return replace(contact, email=normalize_address(contact.email.strip()), name=_field(contact.name, "name"),
                   phone=_field(contact.phone, "phone"), org=_field(contact.org, "organisation"),
                   note=_field(contact.note, "note", MAX_NOTE))


def quoted(name: str, email: str) -> str:
    """An address as it goes into a To field: ``"Name" <address>``."""
    if not name:
        return email
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{email}>'


def _vcards(text: str) -> list[tuple[dict[str, str], list[str]]]:
    """(fields, groups) of each card; in a worker thread (vobject parses)."""
    out = []
    for card in vobject.readComponents(text, ignoreUnreadable=True):
        if card.name != "VCARD":
            continue
        fields = {"name": str(getattr(card, "fn", None) and card.fn.value or ""),
                  "email": str(getattr(card, "email", None) and card.email.value or ""),
                  "phone": str(getattr(card, "tel", None) and card.tel.value or ""),
                  "note": str(getattr(card, "note", None) and card.note.value or "")}
        org = getattr(card, "org", None)
        if org is not None:
            fields["org"] = " ".join(org.value) if isinstance(org.value, list) else str(org.value)
        groups = getattr(card, "categories", None)
        out.append((fields, [str(g) for g in groups.value] if groups is not None else []))
        if len(out) >= MAX_ROWS:
            break
    return out


def _vcard_text(contacts: list[Contact], groups: dict[int, str]) -> str:
    parts = []
    for c in contacts:
        card = vobject.vCard()
        card.add("fn").value = c.name or c.email
        card.add("n").value = vobject.vcard.Name(family=c.name or c.email)
        email = card.add("email")
        email.value, email.type_param = c.email, "INTERNET"
        for key, value in (("tel", c.phone), ("note", c.note)):
            if value:
                card.add(key).value = value
        if c.org:
            card.add("org").value = [c.org]
        if c.groups:
            card.add("categories").value = [groups[g] for g in c.groups if g in groups]
        parts.append(card.serialize())
    return "".join(parts)


def _csv_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    names = [HEADERS.get(h.strip().lower().lstrip("\ufeff"), "") for h in header]
    if "email" not in names:
        raise InvalidInput("bad_contact_file", "the first line must name the columns, one of them the e-mail address")
    rows = []
    for number, row in enumerate(reader, start=2):
        rows.append((number, {n: v for n, v in zip(names, row, strict=False) if n}))
        if len(rows) >= MAX_ROWS:
            break
    return rows


def _csv_text(contacts: list[Contact], groups: dict[int, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in contacts:  # a cell that a spreadsheet would run as a formula starts with '
        cells = [c.name, c.email, c.phone, c.org, c.note, ";".join(groups[g] for g in c.groups if g in groups)]
        writer.writerow(["'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in cells])
    return "\ufeff" + out.getvalue()  # with its BOM, Excel reads the Chinese right


class AddressBook:
    def __init__(self, store: ContactStore, accounts: AccountService) -> None:
        self.store = store
        self.accounts = accounts

    async def contacts(self, account: Account, search: str = "", group_id: int | None = None) -> list[Contact]:
        return await self.store.list_contacts(account.id, search[:MAX_FIELD], group_id)

    async def groups(self, account: Account) -> list[ContactGroup]:
        return await self.store.list_groups(account.id)

    async def save(self, account: Account, contact: Contact) -> int:
        """Add (``id`` 0; the same address again updates that contact) or change a contact; its id."""
        contact = checked(contact)
        if not contact.id and await self.store.count_contacts(account.id) >= MAX_CONTACTS:
            raise InvalidInput("too_many_contacts", f"at most {MAX_CONTACTS}")
        found = await self.store.put_contact(account.id, contact)
        if not found:
            raise NotFound("unknown_contact", str(contact.id))
        return found

    async def remove(self, account: Account, contact_id: int) -> None:
        if not await self.store.delete_contact(account.id, contact_id):
            raise NotFound("unknown_contact", str(contact_id))

    async def save_group(self, account: Account, group_id: int, name: str) -> int:
        name = _field(name, "group")
        if not name:
            raise InvalidInput("bad_contact", "a group needs a name")
        if not group_id and len(await self.store.list_groups(account.id)) >= MAX_GROUPS:
            raise InvalidInput("too_many_contacts", f"at most {MAX_GROUPS} groups")
        found = await self.store.put_group(account.id, group_id, name)
        if not found:
            raise NotFound("unknown_contact", f"group {group_id}")
        return found

    async def remove_group(self, account: Account, group_id: int) -> None:
        if not await self.store.delete_group(account.id, group_id):
            raise NotFound("unknown_contact", f"group {group_id}")

    async def set_member(self, account: Account, group_id: int, contact_id: int, member: bool) -> None:
        if not await self.store.set_member(account.id, group_id, contact_id, member):
            raise NotFound("unknown_contact", f"group {group_id} contact {contact_id}")

    # --- completion and the directory ---------------------------------------------------------------------
    async def complete(self, account: Account, text: str) -> list[Completion]:
        """What the compose form offers for ``text`` (the part of the field being typed): contacts, groups
        (all their members at once), then users of the domain's directory, at most COMPLETIONS."""
        text = text.strip()[:MAX_FIELD]
        if not text:
            return []
        out = [Completion(quoted(c.name, c.email) if c.name else c.email, quoted(c.name, c.email), "contact")
               for c in await self.store.list_contacts(account.id, text, limit=COMPLETIONS)]
        needle = text.lower()
        for group in await self.store.list_groups(account.id):
            if needle in group.name.lower() and group.members and len(out) < COMPLETIONS:
                members = await self.store.list_contacts(account.id, group_id=group.id, limit=500)
                out.append(Completion(group.name, ", ".join(quoted(c.name, c.email) for c in members), "group"))
        seen = {c.value for c in out}
        if len(out) < COMPLETIONS:
            for user in await self.directory(account, text, limit=COMPLETIONS):
                value = quoted(user.name, user.address)
                if value not in seen and len(out) < COMPLETIONS:
                    out.append(Completion(value, value, "directory"))
        return out

    async def directory(self, account: Account, search: str = "", after: str = "", limit: int = 100) -> list[Account]:
        """The active users of the account's domain (read-only), by address."""
        domain = account.address.rpartition("@")[2]
        users = await self.accounts.page_users(domain, after=after, search=search[:MAX_FIELD], limit=limit)
        return [u for u in users if u.active]

    # --- files ------------------------------------------------------------------------------------------
    async def import_file(self, account: Account, data: bytes, kind: str) -> Imported:
        """Contacts from a vCard (``kind`` vcf) or CSV file (UTF-8, or GB18030 as Chinese Excel writes it):
        each added, or updated when its address is known; groups named in it are made."""
        if len(data) > MAX_IMPORT:
            raise InvalidInput("bad_contact_file", f"at most {MAX_IMPORT} octets")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("gb18030", errors="replace")
        if kind == "vcf":
            try:
                cards = await asyncio.to_thread(_vcards, text)
            except Exception as exc:  # vobject's ParseError and what a broken card makes it raise
                raise InvalidInput("bad_contact_file", str(exc)[:200]) from None
            rows = [(n, {**fields, "groups": ";".join(groups)}) for n, (fields, groups) in enumerate(cards, start=1)]
        else:
            try:
                rows = await asyncio.to_thread(_csv_rows, text)
            except csv.Error as exc:
                raise InvalidInput("bad_contact_file", str(exc)[:200]) from None
        good: list[tuple[Contact, tuple[str, ...]]] = []
        refused: list[tuple[int, str]] = []
        for number, row in rows:  # checked first; then stored a thousand at a time, each thousand one transaction
            try:
                contact = checked(Contact(0, row.get("name", ""), row.get("email", ""), row.get("phone", ""),
                                          row.get("org", ""), row.get("note", "")))
                names = tuple(dict.fromkeys(_field(g, "group") for g in
                                            row.get("groups", "").replace(",", ";").split(";") if g.strip()))
                good.append((contact, names))
            except InvalidInput as exc:
                refused.append((number, exc.public_key))
        added = 0
        for start in range(0, len(good), IMPORT_BATCH):
            batch = good[start:start + IMPORT_BATCH]
            stored = await self.store.put_contacts(account.id, batch, MAX_CONTACTS, MAX_GROUPS)
            added += stored
            refused += [(0, "too_many_contacts")] * (len(batch) - stored)  # the address book was full
        return Imported(added, refused[:1000])

    async def export_file(self, account: Account, kind: str) -> str:
        """Every contact as vCard 3.0 (``kind`` vcf) or CSV."""
        contacts = await self.store.list_contacts(account.id)
        names = {g.id: g.name for g in await self.store.list_groups(account.id)}
        return await asyncio.to_thread(_vcard_text if kind == "vcf" else _csv_text, contacts, names)
