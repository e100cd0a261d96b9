"""A Sieve script into our own tree (RFC 5228 §8 grammar, via sievelib's parser), checked when stored:
what we do not run is refused with its line and column, never found while mail waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sievelib.parser import Parser

MAX_SCRIPT = 64 * 1024  # bytes of a script
SUPPORTED = frozenset({"fileinto", "envelope", "reject", "ereject", "copy", "imap4flags", "comparator-i;octet",
                       "comparator-i;ascii-casemap"})
MATCH_TYPES = frozenset({":is", ":contains", ":matches"})
ADDRESS_PARTS = frozenset({":all", ":localpart", ":domain"})
COMPARATORS = frozenset({"i;ascii-casemap", "i;octet"})
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class CompileError(ValueError):
    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(f"line {line}, column {column}: {message}" if line else message)
        self.line, self.column, self.reason = line, column, message


# --- the tree ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """How a test compares: ``match`` (:is, :contains, :matches) with ``comparator``, against ``keys``."""

    match: str
    comparator: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Test:
    kind: str  # header, address, envelope, exists, size, allof, anyof, not, true, false
    names: tuple[str, ...] = ()  # header names, or envelope parts
    part: str = ":all"  # address part
    how: Match | None = None
    over: bool = False  # size :over (else :under)
    limit: int = 0
    tests: tuple[Test, ...] = ()


@dataclass(frozen=True)
class Command:
    kind: str  # if, keep, discard, stop, redirect, fileinto, reject, ereject, setflag, addflag, removeflag
    branches: tuple[tuple[Test | None, tuple[Command, ...]], ...] = ()  # if: (test or None for else, block)
    argument: str = ""  # mailbox, address, reason
    flags: tuple[str, ...] | None = None  # :flags, or a flag command's list
    copy: bool = False


@dataclass(frozen=True)
class Script:
    commands: tuple[Command, ...]
    requires: frozenset[str] = field(default_factory=frozenset)


# --- sievelib's commands into ours -------------------------------------------------------------------
def _string(raw: Any) -> str:
    """A quoted string or a ``text:`` block as sievelib keeps it, to its value (RFC 5228 §2.4.2)."""
    if not isinstance(raw, str):
        raise CompileError(f"a string was expected, not {raw!r}")
    if raw.startswith("text:"):
        lines = raw.split("\n")[1:]
        if lines and lines[-1].strip() == ".":
            lines = lines[:-1]
        return "\n".join(line[1:] if line.startswith("..") else line for line in lines) + ("\n" if lines else "")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out, escaped = [], False
        for ch in raw[1:-1]:
            if escaped or ch != "\\":
                out.append(ch)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return raw


def _strings(raw: Any) -> tuple[str, ...]:
    return tuple(_string(x) for x in raw) if isinstance(raw, list) else (_string(raw),)


def _number(raw: str) -> int:
    raw = str(raw).strip()
    scale = UNITS.get(raw[-1:].upper(), 1)
    digits = raw[:-1] if scale != 1 else raw
    if not digits.isdigit():
        raise CompileError(f"a number was expected, not {raw!r}")
    return int(digits) * scale


def _match(node: Any) -> Match:
    args = node.arguments
    match = args.get("match-type", ":is")
    if match not in MATCH_TYPES:
        raise CompileError(f"the match type {match} is not supported")
    comparator = _string(node.extra_arguments.get("comparator", '"i;ascii-casemap"'))
    if comparator not in COMPARATORS:
        raise CompileError(f"the comparator {comparator} is not supported")
    return Match(match, comparator, _strings(args["key-list"]))


def _test(node: Any) -> Test:
    kind, args = node.name, node.arguments
    if kind in ("true", "false"):
        return Test(kind)
    if kind == "not":
        return Test(kind, tests=(_test(args["test"]),))
    if kind in ("allof", "anyof"):
        return Test(kind, tests=tuple(_test(t) for t in args["tests"]))
    if kind == "exists":
        return Test(kind, names=_strings(args["header-names"]))
    if kind == "size":
        return Test(kind, over=args["comparator"] == ":over", limit=_number(args["limit"]))
    if kind == "header":
        return Test(kind, names=_strings(args["header-names"]), how=_match(node))
    if kind in ("address", "envelope"):
        part = args.get("address-part", ":all")
        if part not in ADDRESS_PARTS:
            raise CompileError(f"the address part {part} is not supported")
        return Test(kind, names=_strings(args["header-list"]), part=part, how=_match(node))
    raise CompileError(f"the test {kind} is not supported")


def _block(nodes: list[Any]) -> tuple[Command, ...]:
    out: list[Command] = []
    for node in nodes:
        kind, args = node.name, node.arguments
        if kind == "require":
            continue
        if kind == "if":
            out.append(Command("if", branches=((_test(args["test"]), _block(node.children)),)))
        elif kind in ("elsif", "else"):
            if not out or out[-1].kind != "if" or out[-1].branches[-1][0] is None:
                raise CompileError(f"{kind} without an if before it")
            branch = (_test(args["test"]) if kind == "elsif" else None, _block(node.children))
            out[-1] = Command("if", branches=(*out[-1].branches, branch))
        elif kind in ("keep", "discard", "stop"):
            flags = _strings(node.extra_arguments["flags"]) if "flags" in args else None
            out.append(Command(kind, flags=flags))
        elif kind == "redirect":
            out.append(Command(kind, argument=_string(args["address"]), copy="copy" in args))
        elif kind == "fileinto":
            flags = _strings(node.extra_arguments["flags"]) if "flags" in args else None
            out.append(Command(kind, argument=_string(args["mailbox"]), flags=flags, copy="copy" in args))
        elif kind in ("reject", "ereject"):
            out.append(Command(kind, argument=_string(args["text"])))
        elif kind in ("setflag", "addflag", "removeflag"):
            if "variablename" in args:
                raise CompileError(f"{kind} with a variable needs the variables extension, not supported yet")
            out.append(Command(kind, flags=_strings(args["list-of-flags"])))
        else:
            raise CompileError(f"the command {kind} is not supported")
    return tuple(out)


def compile_script(text: str) -> Script:
    """The script's tree; raises CompileError (with line and column where the parser knows them)."""
    if len(text.encode()) > MAX_SCRIPT:
        raise CompileError(f"the script is larger than {MAX_SCRIPT} bytes")
    parser = Parser()
    if not parser.parse(text.replace("\r\n", "\n")):
        line, column = (parser.error_pos[:2] if getattr(parser, "error_pos", None) else (0, 0))
        reason = str(getattr(parser, "error", "syntax error")).split(": ", 1)[-1]
        raise CompileError(reason, line, column)
    requires: set[str] = set()
    for node in parser.result:
        if node.name == "require":
            requires.update(_strings(node.arguments["capabilities"]))
    unsupported = sorted(requires - SUPPORTED)
    if unsupported:
        raise CompileError(f"the extension {unsupported[0]} is not supported yet")
    try:
        return Script(_block(parser.result), frozenset(requires))
    except KeyError as exc:
        raise CompileError(f"an argument is missing: {exc.args[0]}") from None
