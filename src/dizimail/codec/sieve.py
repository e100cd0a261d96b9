"""The Sieve language's grammar (RFC 5228 §8) into a generic tree, with the line and column of every
node and of every fault.

Written for us rather than taken from sievelib (docs/sieve.md "Decisions"): sievelib's parser knows
a fixed table of commands and tags, and the extensions issue #12 asks for (ereject, relational with
i;ascii-numeric, subaddress, index, include, duplicate, mailboxexists, spamtest …) are not in it.
Here the grammar knows no command at all: ``services.sieve.compile`` checks each command's arguments.

One pass over the text, index-based, no regular expression that can backtrack: a script costs time
linear in its length. Nesting and the number of nodes are bounded."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DEPTH = 32  # blocks and tests inside one another
MAX_NODES = 10_000  # commands, tests and arguments of one script
QUANTIFIERS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MAX_NUMBER = (1 << 63) - 1


class SieveSyntaxError(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.reason, self.line, self.column = message, line, column


@dataclass(frozen=True)
class Tag:
    name: str  # lower case, with its colon: ":is"
    line: int
    column: int


@dataclass(frozen=True)
class Number:
    value: int
    line: int
    column: int


@dataclass(frozen=True)
class Strings:
    values: tuple[str, ...]
    listed: bool  # written as a [list] (a single string may stand for a list, not the other way)
    line: int
    column: int


Argument = Tag | Number | Strings


@dataclass
class Node:
    """A command (with ``block`` when it has one) or a test."""

    name: str  # lower case
    line: int
    column: int
    arguments: list[Argument] = field(default_factory=list)
    tests: list[Node] = field(default_factory=list)
    tests_listed: bool = False  # written as a (test-list)
    block: list[Node] | None = None


def _is_alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.nodes = 0

    # --- position and faults -------------------------------------------------------------------
    def where(self) -> tuple[int, int]:
        return self.line, self.pos - self.line_start + 1

    def fail(self, message: str) -> SieveSyntaxError:
        return SieveSyntaxError(message, *self.where())

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(f"the script has more than {MAX_NODES} commands, tests and arguments")

    def advance(self, n: int) -> None:
        """Move over ``n`` characters, keeping the line count."""
        end = self.pos + n
        newlines = self.text.count("\n", self.pos, end)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.pos, end) + 1
        self.pos = end

    # --- white space and comments ----------------------------------------------------------------
    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n":
                self.advance(1)
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.advance((n if end < 0 else end) - self.pos)
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("a comment /* is not closed")
                self.advance(end + 2 - self.pos)
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            found = self.peek()
            raise self.fail(f"{ch!r} was expected" + (f", not {found!r}" if found else " before the end"))
        self.advance(1)

    # --- tokens --------------------------------------------------------------------------------
    def identifier(self) -> str:
        start = self.pos
        text = self.text
        end = start
        while end < len(text) and (_is_alpha(text[end]) or text[end].isdigit()) and text[end].isascii():
            end += 1
        self.advance(end - start)
        return text[start:end]

    def number(self) -> Number:
        line, column = self.where()
        start = self.pos
        end = start
        while end < len(self.text) and "0" <= self.text[end] <= "9":
            end += 1
        value = int(self.text[start:end])
        self.advance(end - start)
        quantifier = self.text[self.pos:self.pos + 1].upper()
        if quantifier in QUANTIFIERS:
            value *= QUANTIFIERS[quantifier]
            self.advance(1)
        if value > MAX_NUMBER:
            raise SieveSyntaxError("the number is too large", line, column)
        return Number(value, line, column)

    def quoted(self) -> str:
        """RFC 5228 §2.4.2: a backslash takes the next character as it is."""
        text, n = self.text, len(self.text)
        line, column = self.where()
        out: list[str] = []
        i = self.pos + 1
        while True:
            j = i
            while j < n and text[j] != '"' and text[j] != "\\":
                j += 1
            out.append(text[i:j])
            if j >= n or (text[j] == "\\" and j + 1 >= n):
                raise SieveSyntaxError("a string is not closed", line, column)
            if text[j] == '"':
                self.advance(j + 1 - self.pos)
                return "".join(out)
            out.append(text[j + 1])
            i = j + 2

    def multiline(self) -> str:
        """RFC 5228 §2.4.2: ``text:`` up to a line holding only ".", dot-stuffed lines unstuffed."""
        text = self.text
        self.advance(5)  # text:
        end = text.find("\n", self.pos)
        if end < 0:
            raise self.fail("text: must be followed by a line break")
        rest = text[self.pos:end].rstrip("\r")
        stripped = rest.lstrip(" \t")
        if stripped and not stripped.startswith("#"):
            raise self.fail("only white space or a comment may follow text: on its line")
        self.advance(end + 1 - self.pos)
        lines: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.fail("a text: block has no line with a single '.' at its end")
            end = text.find("\n", self.pos)
            stop = len(text) if end < 0 else end
            line = text[self.pos:stop].rstrip("\r")
            self.advance(stop - self.pos + (1 if end >= 0 else 0))
            if line == ".":
                return "".join(line + "\n" for line in lines)
            lines.append(line[1:] if line.startswith("..") else line)

    def string(self) -> str:
        if self.text.startswith('"', self.pos):
            return self.quoted()
        if self.text[self.pos:self.pos + 5].lower() == "text:":
            return self.multiline()
        raise self.fail("a string was expected")

    def starts_string(self) -> bool:
        ch = self.peek()
        return ch == '"' or self.text[self.pos:self.pos + 5].lower() == "text:"

    def strings(self) -> Strings:
        line, column = self.where()
        if self.peek() != "[":
            self.count()
            return Strings((self.string(),), False, line, column)
        self.advance(1)
        values: list[str] = []
        while True:
            if not self.starts_string():
                raise self.fail("a string was expected in the list")
            self.count()
            values.append(self.string())
            if self.peek() == ",":
                self.advance(1)
                continue
            self.expect("]")
            return Strings(tuple(values), True, line, column)

    # --- the grammar -----------------------------------------------------------------------------
    def arguments(self, node: Node, depth: int) -> None:
        """arguments = *argument [ test / test-list ]"""
        while True:
            ch = self.peek()
            if ch == ":":
                line, column = self.where()
                self.advance(1)
                if not _is_alpha(self.text[self.pos:self.pos + 1]):
                    raise self.fail("a tag name was expected after ':'")
                self.count()
                node.arguments.append(Tag(":" + self.identifier().lower(), line, column))
            elif "0" <= ch <= "9" and ch:
                self.count()
                node.arguments.append(self.number())
            elif ch == "[" or self.starts_string():
                node.arguments.append(self.strings())
            else:
                break
        ch = self.peek()
        if ch == "(":
            self.advance(1)
            node.tests_listed = True
            while True:
                node.tests.append(self.test(depth + 1))
                if self.peek() == ",":
                    self.advance(1)
                    continue
                self.expect(")")
                break
        elif ch and _is_alpha(ch):
            node.tests.append(self.test(depth + 1))

    def test(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"tests are nested more than {MAX_DEPTH} deep")
        if not _is_alpha(self.peek()):
            raise self.fail("a test was expected")
        line, column = self.where()
        self.count()
        node = Node(self.identifier().lower(), line, column)
        self.arguments(node, depth)
        return node

    def commands(self, depth: int, closing: str) -> list[Node]:
        out: list[Node] = []
        while True:
            ch = self.peek()
            if ch == closing:
                return out
            if not ch:
                raise self.fail(f"{closing!r} was expected before the end")
            if not _is_alpha(ch):
                raise self.fail("a command was expected" + (f", not {ch!r}" if ch else " before the end"))
            line, column = self.where()
            self.count()
            node = Node(self.identifier().lower(), line, column)
            self.arguments(node, depth)
            if self.peek() == "{":
                if depth >= MAX_DEPTH:
                    raise self.fail(f"blocks are nested more than {MAX_DEPTH} deep")
                self.advance(1)
                node.block = self.commands(depth + 1, "}")
                self.expect("}")
            else:
                self.expect(";")
            out.append(node)


def parse(text: str) -> list[Node]:
    """The script's commands; raises :class:`SieveSyntaxError`."""
    parser = _Parser(text)
    return parser.commands(0, "")
