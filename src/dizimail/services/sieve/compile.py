"""A Sieve script into our own tree (RFC 5228 §8 grammar, parsed by ``codec.sieve``), checked when
stored: each command's and test's arguments against its signature, and what we do not run refused with
its line and column, never found while mail waits."""

from __future__ import annotations

from dizimail.codec.sieve import Argument, Node, Number, SieveSyntaxError, Strings, Tag, parse
from dizimail.services.sieve.tree import Command, CompileError, Match, Script, Test, Vacation

__all__ = ["Command", "CompileError", "Match", "Script", "Test", "Vacation", "compile_script"]

MAX_SCRIPT = 64 * 1024  # bytes of a script
SUPPORTED = frozenset({
    "fileinto", "envelope", "reject", "ereject", "copy", "imap4flags", "mailbox", "relational", "subaddress",
    "index", "encoded-character", "variables", "body", "vacation", "vacation-seconds", "date", "duplicate",
    "include", "spamtest", "spamtestplus", "virustest",
    "comparator-i;octet", "comparator-i;ascii-casemap", "comparator-i;ascii-numeric"})
COMPARATORS = {"i;ascii-casemap": "", "i;octet": "", "i;ascii-numeric": "comparator-i;ascii-numeric"}
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})
# tag → the extension it needs ("" none); match types, address parts
MATCH_TYPES = {":is": "", ":contains": "", ":matches": "", ":value": "relational", ":count": "relational"}
ADDRESS_PARTS = {":all": "", ":localpart": "", ":domain": "", ":user": "subaddress", ":detail": "subaddress"}
MODIFIERS = {":lower": 40, ":upper": 40, ":lowerfirst": 30, ":upperfirst": 30, ":quotewildcard": 20,
             ":length": 10}  # RFC 5229 §4.1: applied from the highest precedence down
MAX_VARIABLE_NAME = 32
DATE_PARTS = frozenset({"year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
                        "std11", "zone", "weekday"})  # RFC 5260 §4.2
DUPLICATE_PERIOD = 12 * 3600  # seconds a duplicate is remembered by default (Pigeonhole's default)
MAX_DUPLICATE_PERIOD = 7 * 86400


# --- arguments against signatures ----------------------------------------------------------------------
def _fault(message: str, at: Node | Argument) -> CompileError:
    return CompileError(message, at.line, at.column)


class _Args:
    """A node's arguments read against its signature: ``tags`` (name → what follows it: "" nothing,
    "string", "strings", "number") and the kinds of the positional arguments that follow the tags."""

    def __init__(self, node: Node, tags: dict[str, str], positional: tuple[str, ...], requires: frozenset[str],
                 needs: dict[str, str] | None = None, exclusive: tuple[frozenset[str], ...] = ()) -> None:
        self.node = node
        self.tags: dict[str, Argument | None] = {}
        values: list[Argument] = []
        args = node.arguments
        i = 0
        while i < len(args):
            arg = args[i]
            if not isinstance(arg, Tag):
                values.append(arg)
                i += 1
                continue
            if values:
                raise _fault(f"the tag {arg.name} must come before {node.name}'s other arguments", arg)
            if arg.name not in tags:
                raise _fault(f"{node.name} has no tag {arg.name}", arg)
            extension = (needs or {}).get(arg.name, "")
            if extension and extension not in requires:
                raise _fault(f"{arg.name} needs the {extension} extension (require \"{extension}\")", arg)
            if arg.name in self.tags:
                raise _fault(f"the tag {arg.name} is given twice", arg)
            for group in exclusive:
                if arg.name in group and group & set(self.tags):
                    raise _fault(f"{arg.name} cannot be used with {' '.join(sorted(group & set(self.tags)))}", arg)
            kind = tags[arg.name]
            if kind:
                if i + 1 >= len(args) or isinstance(args[i + 1], Tag):
                    raise _fault(f"the tag {arg.name} needs a {kind.rstrip('s')} after it", arg)
                self.tags[arg.name] = _checked(args[i + 1], kind, f"{arg.name}'s argument")
                i += 2
            else:
                self.tags[arg.name] = None
                i += 1
        if len(values) != len(positional):
            raise _fault(f"{node.name} takes {len(positional)} argument{'s' if len(positional) != 1 else ''} "
                         f"after its tags, not {len(values)}", node)
        self.values = [_checked(v, kind, f"{node.name}'s argument") for v, kind in zip(values, positional, strict=True)]

    def string(self, tag: str, default: str = "") -> str:
        arg = self.tags.get(tag)
        return arg.values[0] if isinstance(arg, Strings) else default

    def strings(self, tag: str) -> tuple[str, ...]:
        arg = self.tags.get(tag)
        return arg.values if isinstance(arg, Strings) else ()

    def number(self, tag: str) -> int | None:
        arg = self.tags.get(tag)
        return arg.value if isinstance(arg, Number) else None


def _checked(arg: Argument, kind: str, what: str) -> Argument:
    if kind == "number" and not isinstance(arg, Number):
        raise _fault(f"{what} must be a number", arg)
    if kind in ("string", "strings") and not isinstance(arg, Strings):
        raise _fault(f"{what} must be a string" + (" list" if kind == "strings" else ""), arg)
    if kind == "string" and isinstance(arg, Strings) and (arg.listed and len(arg.values) != 1):
        raise _fault(f"{what} must be one string, not a list", arg)
    return arg


_MATCH_TAGS = {":is": "", ":contains": "", ":matches": "", ":value": "string", ":count": "string",
               ":comparator": "string"}
_INDEX_TAGS = {":index": "number", ":last": ""}
_PART_TAGS = dict.fromkeys(ADDRESS_PARTS, "")
_NEEDS = {**{k: v for k, v in MATCH_TYPES.items() if v}, **{k: v for k, v in ADDRESS_PARTS.items() if v},
          ":index": "index", ":last": "index"}
_EXCLUSIVE = (frozenset(MATCH_TYPES), frozenset(ADDRESS_PARTS))


class _Compiler:
    def __init__(self, requires: frozenset[str]) -> None:
        self.requires = requires
        self.uses: set[str] = set()
        self.includes: set[str] = set()
        self.variables = "variables" in requires
        self.encoded = "encoded-character" in requires

    def need(self, extension: str, node: Node) -> None:
        if extension not in self.requires:
            raise _fault(f"{node.name} needs the {extension} extension (require \"{extension}\")", node)

    def args(self, node: Node, tags: dict[str, str], positional: tuple[str, ...],
             exclusive: tuple[frozenset[str], ...] = _EXCLUSIVE, needs: dict[str, str] = _NEEDS) -> _Args:
        return _Args(node, tags, positional, self.requires, needs, exclusive)

    def match(self, a: _Args, keys: Strings) -> Match:
        match = next((t for t in a.tags if t in MATCH_TYPES), ":is")
        relation = ""
        if match in (":value", ":count"):
            relation = a.string(match).lower()
            if relation not in RELATIONS:
                raise _fault(f"{match} takes one of {', '.join(sorted(RELATIONS))}, not {relation!r}", a.node)
        comparator = a.string(":comparator", "i;ascii-casemap").lower()
        if comparator not in COMPARATORS:
            raise _fault(f"the comparator {comparator} is not supported", a.node)
        if COMPARATORS[comparator] and COMPARATORS[comparator] not in self.requires:
            raise _fault(f"the comparator {comparator} must be required (require \"{COMPARATORS[comparator]}\")",
                         a.node)
        if comparator == "i;ascii-numeric" and match in (":contains", ":matches"):
            raise _fault(f"the comparator i;ascii-numeric cannot do {match}", a.node)
        return Match(match, comparator, keys.values, relation)

    def index(self, a: _Args) -> tuple[int, bool]:
        index = a.number(":index")
        if ":last" in a.tags and index is None:
            raise _fault(":last needs :index", a.node)
        if index is not None and index < 1:
            raise _fault(":index counts from 1", a.node)
        return index or 0, ":last" in a.tags

    def test(self, node: Node) -> Test:
        kind = node.name
        self.uses.add(kind)
        if kind in ("allof", "anyof", "not"):
            if node.arguments:
                raise _fault(f"{kind} takes tests only", node)
            if kind == "not" and (len(node.tests) != 1 or node.tests_listed):
                raise _fault("not takes one test", node)
            if kind != "not" and not node.tests_listed:
                raise _fault(f"{kind} takes a list of tests in parentheses", node)
            return Test(kind, tests=tuple(self.test(t) for t in node.tests))
        if node.tests:
            raise _fault(f"{kind} takes no test", node)
        if kind in ("true", "false"):
            self.args(node, {}, ())
            return Test(kind)
        if kind == "exists":
            a = self.args(node, {}, ("strings",))
            return Test(kind, names=self._list(a.values[0]))
        if kind == "size":
            a = self.args(node, {":over": "", ":under": ""}, ("number",))
            if len(a.tags) != 1:
                raise _fault("size takes :over or :under", node)
            return Test(kind, over=":over" in a.tags, limit=a.values[0].value)  # type: ignore[union-attr]
        if kind == "header":
            a = self.args(node, {**_MATCH_TAGS, **_INDEX_TAGS}, ("strings", "strings"))
            index, last = self.index(a)
            return Test(kind, names=self._list(a.values[0]), how=self.match(a, self._keys(a.values[1])),
                        index=index, last=last)
        if kind in ("address", "envelope"):
            if kind == "envelope":
                self.need("envelope", node)
            a = self.args(node, {**_MATCH_TAGS, **_PART_TAGS, **(_INDEX_TAGS if kind == "address" else {})},
                          ("strings", "strings"))
            index, last = self.index(a)
            part = next((t for t in a.tags if t in ADDRESS_PARTS), ":all")
            names = self._list(a.values[0])
            if kind == "envelope":
                wrong = [n for n in names if n.lower() not in ("from", "to")]
                if wrong:
                    raise _fault(f"envelope knows \"from\" and \"to\", not {wrong[0]!r}", node)
            return Test(kind, names=names, part=part, how=self.match(a, self._keys(a.values[1])), index=index,
                        last=last)
        if kind == "body":
            self.need("body", node)
            a = self.args(node, {**_MATCH_TAGS, ":raw": "", ":content": "strings", ":text": ""}, ("strings",),
                          (frozenset(MATCH_TYPES), frozenset({":raw", ":content", ":text"})))
            transform = next((t for t in a.tags if t in (":raw", ":content", ":text")), ":text")
            return Test(kind, how=self.match(a, self._keys(a.values[0])), transform=transform,
                        types=tuple(t.lower() for t in a.strings(":content")))
        if kind == "string":
            self.need("variables", node)
            a = self.args(node, _MATCH_TAGS, ("strings", "strings"))
            return Test(kind, names=self._list(a.values[0]), how=self.match(a, self._keys(a.values[1])))
        if kind == "hasflag":  # RFC 5232 §4
            self.need("imap4flags", node)
            count = len([x for x in node.arguments if not isinstance(x, Tag)])
            a = self.args(node, _MATCH_TAGS, ("strings", "strings") if count == 2 else ("strings",))
            if count == 2:
                self.need("variables", node)
            names = tuple(self._variable_name(v, node) for v in self._list(a.values[0])) if count == 2 else ()
            return Test(kind, names=names, how=self.match(a, self._keys(a.values[-1])))
        if kind in ("date", "currentdate"):
            self.need("date", node)
            tags = {**_MATCH_TAGS, ":zone": "string", ":originalzone": "", **(_INDEX_TAGS if kind == "date" else {})}
            if kind == "currentdate":
                tags.pop(":originalzone")
            a = self.args(node, tags, ("string", "string", "strings") if kind == "date" else ("string", "strings"),
                          (*_EXCLUSIVE, frozenset({":zone", ":originalzone"})))
            index, last = self.index(a)
            part = self.one(a, len(a.values) - 2).lower()
            if "${" not in part and part not in DATE_PARTS:
                raise _fault(f"{part!r} is not a date part ({', '.join(sorted(DATE_PARTS))})", node)
            zone: str | None = None
            if ":zone" in a.tags:
                zone = self.text(a.string(":zone"), node)
                if "${" not in zone and not zone_ok(zone):
                    raise _fault(f"{zone!r} is not a time zone offset like +0800", node)
            elif ":originalzone" in a.tags:
                zone = ""
            keys = self._keys(a.values[-1])
            return Test(kind, names=(self.one(a, 0),) if kind == "date" else (), how=self.match(a, keys),
                        index=index, last=last, zone=zone, date_part=part)
        if kind in ("spamtest", "virustest"):
            self.need(kind, node)
            tags = dict(_MATCH_TAGS)
            if kind == "spamtest" and "spamtestplus" in self.requires:
                tags[":percent"] = ""
            a = self.args(node, tags, ("strings",))
            return Test(kind, how=self.match(a, self._keys(a.values[0])),
                        transform=":percent" if ":percent" in a.tags else "")
        if kind == "duplicate":
            self.need("duplicate", node)
            a = self.args(node, {":handle": "string", ":header": "string", ":uniqueid": "string", ":seconds": "number",
                                 ":last": ""}, (), (frozenset({":header", ":uniqueid"}),), needs={})
            seconds = a.number(":seconds")
            period = DUPLICATE_PERIOD if seconds is None else min(seconds, MAX_DUPLICATE_PERIOD)
            return Test(kind, names=(self.text(a.string(":header", "message-id"), node),),
                        uniqueid=self.text(a.string(":uniqueid"), node) if ":uniqueid" in a.tags else None,
                        handle=self.text(a.string(":handle"), node), seconds=period, last=":last" in a.tags)
        if kind == "mailboxexists":
            self.need("mailbox", node)
            a = self.args(node, {}, ("strings",))
            return Test(kind, names=self._list(a.values[0]))
        raise _fault(f"the test {kind} is not supported", node)

    def _list(self, arg: Argument) -> tuple[str, ...]:
        assert isinstance(arg, Strings)
        return tuple(self.text(v, arg) for v in arg.values)

    def _keys(self, arg: Argument) -> Strings:
        assert isinstance(arg, Strings)
        return Strings(self._list(arg), arg.listed, arg.line, arg.column)

    def text(self, value: str, at: Argument | Node) -> str:
        """encoded-character (RFC 5228 §2.4.2.4) is read here, once; variables are expanded when run."""
        return _decode_characters(value, at) if self.encoded and "${" in value else value

    def one(self, a: _Args, i: int) -> str:
        arg = a.values[i]
        assert isinstance(arg, Strings)
        if arg.listed and len(arg.values) != 1:
            raise _fault(f"{a.node.name} takes one string here, not a list", arg)
        return self.text(arg.values[0], arg)

    def block(self, nodes: list[Node]) -> tuple[Command, ...]:
        out: list[Command] = []
        for node in nodes:
            kind = node.name
            if kind == "require":
                raise _fault("require must come before every other command", node)
            if kind in ("if", "elsif", "else"):
                if node.block is None:
                    raise _fault(f"{kind} needs a block", node)
                if node.arguments or (kind == "else") != (not node.tests) or len(node.tests) > 1 or node.tests_listed:
                    raise _fault(f"{kind} takes " + ("no test" if kind == "else" else "one test"), node)
                branch = (self.test(node.tests[0]) if kind != "else" else None, self.block(node.block))
                if kind == "if":
                    out.append(Command("if", branches=(branch,)))
                    continue
                if not out or out[-1].kind != "if" or out[-1].branches[-1][0] is None:
                    raise _fault(f"{kind} without an if before it", node)
                out[-1] = Command("if", branches=(*out[-1].branches, branch))
                continue
            if node.block is not None:
                raise _fault(f"{kind} takes no block", node)
            if node.tests:
                raise _fault(f"{kind} takes no test", node)
            out.append(self.command(node))
        return tuple(out)

    def command(self, node: Node) -> Command:
        kind = node.name
        self.uses.add(kind)
        if kind in ("stop", "discard"):
            self.args(node, {}, ())
            return Command(kind)
        if kind == "keep":
            a = self.args(node, self._flag_tags(), ())
            return Command(kind, flags=self._flags(a))
        if kind == "redirect":
            a = self.args(node, {":copy": ""}, ("string",))
            self._copy(a)
            return Command(kind, argument=self.one(a, 0), copy=":copy" in a.tags)
        if kind == "fileinto":
            self.need("fileinto", node)
            a = self.args(node, {":copy": "", ":create": "", **self._flag_tags()}, ("string",))
            self._copy(a)
            if ":create" in a.tags:
                self.need("mailbox", node)
            return Command(kind, argument=self.one(a, 0), flags=self._flags(a), copy=":copy" in a.tags,
                           create=":create" in a.tags)
        if kind in ("reject", "ereject"):
            self.need(kind, node)
            a = self.args(node, {}, ("string",))
            return Command(kind, argument=self.one(a, 0))
        if kind in ("setflag", "addflag", "removeflag"):
            self.need("imap4flags", node)
            count = len(node.arguments)
            a = self.args(node, {}, ("string", "strings") if count == 2 else ("strings",))
            variable = ""
            if count == 2:
                self.need("variables", node)
                variable = self._variable_name(self.one(a, 0), node)
            flags = a.values[-1]
            assert isinstance(flags, Strings)
            return Command(kind, flags=self._list(flags), variable=variable)
        if kind == "set":
            self.need("variables", node)
            a = self.args(node, dict.fromkeys(MODIFIERS, ""), ("string", "string"), ())
            name = self._variable_name(self.one(a, 0), node)
            modifiers = tuple(sorted((t for t in a.tags), key=lambda t: -MODIFIERS[t]))
            if len({MODIFIERS[m] for m in modifiers}) != len(modifiers):
                raise _fault("set takes at most one modifier of each precedence", node)
            return Command(kind, argument=self.one(a, 1), variable=name, modifiers=modifiers)
        if kind == "vacation":
            return self.vacation(node)
        if kind == "include":  # RFC 6609: another of the user's own scripts
            self.need("include", node)
            a = self.args(node, {":personal": "", ":global": "", ":once": "", ":optional": ""}, ("string",),
                          (frozenset({":personal", ":global"}),))
            if ":global" in a.tags:
                raise _fault("there are no global scripts here: include :personal scripts", node)
            name = self.one(a, 0)
            if not name or "${" in name or "/" in name or len(name) > 128:
                raise _fault(f"{name[:128]!r} cannot name a script to include", node)
            self.includes.add(name)
            return Command(kind, argument=name, once=":once" in a.tags, optional=":optional" in a.tags)
        if kind == "return":
            self.need("include", node)
            self.args(node, {}, ())
            return Command(kind)
        if kind == "global":
            self.need("include", node)
            self.need("variables", node)
            a = self.args(node, {}, ("strings",))
            names = a.values[0]
            assert isinstance(names, Strings)
            return Command(kind, flags=tuple(self._variable_name(n, node) for n in names.values))
        raise _fault(f"the command {kind} is not supported", node)

    def vacation(self, node: Node) -> Command:
        self.need("vacation", node)
        a = self.args(node, {":days": "number", ":seconds": "number", ":subject": "string", ":from": "string",
                             ":addresses": "strings", ":mime": "", ":handle": "string"}, ("string",),
                      (frozenset({":days", ":seconds"}),))
        if ":seconds" in a.tags:
            self.need("vacation-seconds", node)
        days, seconds = a.number(":days"), a.number(":seconds")
        # RFC 5230 §4.1: 7 days by default; we keep replies at least a day apart and at most 30 days
        # (RFC 6131 §2: :seconds 0 is allowed by the RFC; we do not, a reply per message is a flood).
        period = seconds if seconds is not None else (days if days is not None else 7) * 86400
        period = min(max(period, 86400 if seconds is None else 3600), 30 * 86400)
        tags = a.tags
        addresses = tags.get(":addresses")
        return Command("vacation", vacation=Vacation(
            reason=self.one(a, 0), period=period, subject=self.text(a.string(":subject"), node),
            sender=self.text(a.string(":from"), node),
            addresses=self._list(addresses) if isinstance(addresses, Strings) else (),
            mime=":mime" in tags, handle=self.text(a.string(":handle"), node)))

    def _flag_tags(self) -> dict[str, str]:
        return {":flags": "strings"} if "imap4flags" in self.requires else {}

    def _flags(self, a: _Args) -> tuple[str, ...] | None:
        arg = a.tags.get(":flags")
        return self._list(arg) if isinstance(arg, Strings) else None

    def _copy(self, a: _Args) -> None:
        if ":copy" in a.tags:
            self.need("copy", a.node)

    @staticmethod
    def _variable_name(name: str, node: Node) -> str:
        """RFC 5229 §3: an identifier, compared without case."""
        if (not name or len(name) > MAX_VARIABLE_NAME or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
                or not all(c.isascii() and (c.isalnum() or c == "_") for c in name)):
            raise _fault(f"{name[:MAX_VARIABLE_NAME]!r} is not a variable name", node)
        return name.lower()


def zone_ok(zone: str) -> bool:
    return len(zone) == 5 and zone[0] in "+-" and zone[1:].isdigit() and int(zone[3:]) < 60 and int(zone[1:3]) < 24


def _decode_characters(value: str, at: Argument | Node) -> str:
    """``${hex:…}`` and ``${unicode:…}`` (RFC 5228 §2.4.2.4) into the characters they name; anything else
    that looks like one stays as it is, as the RFC says."""
    out: list[str] = []
    i = 0
    while True:
        start = value.find("${", i)
        if start < 0:
            out.append(value[i:])
            return "".join(out)
        end = value.find("}", start)
        if end < 0:
            out.append(value[i:])
            return "".join(out)
        out.append(value[i:start])
        body = value[start + 2:end]
        kind, colon, rest = body.partition(":")
        words = rest.split()
        decoded: str | None = None
        if colon and kind.lower() in ("hex", "unicode") and words and all(
                w and len(w) <= 8 and all(c in "0123456789abcdefABCDEF" for c in w) for w in words):
            if kind.lower() == "hex":
                try:
                    decoded = bytes(int(w, 16) for w in words if int(w, 16) < 256).decode("utf-8")
                except (UnicodeDecodeError, ValueError):
                    decoded = None
                if decoded is not None and any(int(w, 16) > 255 for w in words):
                    decoded = None
            else:
                points = [int(w, 16) for w in words]
                if any(p > 0x10FFFF or 0xD800 <= p <= 0xDFFF for p in points):
                    raise _fault("${unicode:…} names a character that cannot exist", at)
                decoded = "".join(chr(p) for p in points)
        out.append(decoded if decoded is not None else value[start:end + 1])
        i = end + 1


def compile_script(text: str) -> Script:
    """The script's tree; raises CompileError (with the line and column of the fault)."""
    if len(text.encode()) > MAX_SCRIPT:
        raise CompileError(f"the script is larger than {MAX_SCRIPT} bytes")
    try:
        nodes = parse(text.replace("\r\n", "\n"))
    except SieveSyntaxError as exc:
        raise CompileError(exc.reason, exc.line, exc.column) from None
    requires: set[str] = set()
    at = 0
    while at < len(nodes) and nodes[at].name == "require":
        node = nodes[at]
        if node.tests or node.block is not None or len(node.arguments) != 1 or not isinstance(node.arguments[0], Strings):
            raise _fault("require takes one string list", node)
        for name in node.arguments[0].values:
            if name not in SUPPORTED:
                raise _fault(f"the extension {name} is not supported", node)
            requires.add(name)
        at += 1
    if "vacation-seconds" in requires:
        requires.add("vacation")
    if "spamtestplus" in requires:
        requires.add("spamtest")
    compiler = _Compiler(frozenset(requires))
    commands = compiler.block(nodes[at:])
    return Script(commands, frozenset(requires), frozenset(compiler.uses), frozenset(compiler.includes))
