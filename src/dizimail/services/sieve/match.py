"""How Sieve compares (RFC 5228 §2.7): match types, comparators (RFC 4790) and relations (RFC 5231).

Every comparison costs at most the text's length times the key's: ``:matches`` runs as a set of states
over the pattern and never backtracks, so a hostile 20,000-character subject against ``*a*a*a*c`` is one
pass; with match variables (RFC 5229 §3.2) it runs as a Pike machine keeping one thread per state, the
leftmost wildcard taking as little as it can ("[*] *" on "[a] [b] c" gives "a" and "[b] c")."""

from __future__ import annotations

from collections.abc import Callable

from dizimail.services.sieve.compile import Match

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
MAX_MATCH_VARIABLES = 10  # ${0} … ${9}


def fold(text: str, comparator: str) -> str:
    """i;ascii-casemap folds ASCII letters only (RFC 4790 §9.2)."""
    if comparator == "i;octet" or comparator == "i;ascii-numeric":
        return text
    return text.translate(_ASCII_LOWER)


def glob(pattern: str) -> list[str]:
    """``*`` any run, ``?`` one character, ``\\`` makes the next one literal (RFC 5228 §2.7.1); a
    literal is kept as a backslash and the character."""
    tokens, escaped = [], False
    for ch in pattern:
        if escaped:
            tokens.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            tokens.append(ch)
    if escaped:  # a backslash at the end stands for itself
        tokens.append("\\\\")
    return tokens


def _accepts(token: str, ch: str) -> bool:
    return token == "?" or token == ch or (len(token) == 2 and token[0] == "\\" and token[1] == ch)


Tick = Callable[[], None]  # called every TICK characters of a long match: may raise to stop it
TICK = 1024


def matches(text: str, pattern: str, tick: Tick | None = None) -> bool:
    every = glob(pattern)
    tokens = [t for i, t in enumerate(every) if not (t == "*" and i and every[i - 1] == "*")]
    end = len(tokens)

    def close(states: set[int]) -> set[int]:
        for i in sorted(states):
            j = i
            while j < end and tokens[j] == "*":
                j += 1
                states.add(j)
        return states
    states = close({0})
    for at, ch in enumerate(text):
        if tick is not None and at % TICK == TICK - 1:
            tick()
        following: set[int] = set()
        for i in states:
            if i == end:
                continue
            token = tokens[i]
            if token == "*":
                following.add(i)
            elif _accepts(token, ch):
                following.add(i + 1)
        if not following:
            return False
        states = close(following)
    return end in states


def captures(text: str, pattern: str, source: str | None = None, tick: Tick | None = None) -> list[str] | None:
    """``[${0}, ${1}, …]``: the whole text, then what each wildcard took, cut from ``source`` (the text as
    written, when ``text`` is its case-folded form: the same length); None when it does not match.
    A Pike machine: threads in priority order, at most one per pattern position."""
    tokens = glob(pattern)
    end = len(tokens)
    slot = {pos: n for n, pos in enumerate(i for i, t in enumerate(tokens) if t in ("*", "?"))}
    Spans = tuple[tuple[int, int], ...]

    def follow(pc: int, spans: Spans, at: int, out: list[tuple[int, Spans]], seen: set[int]) -> None:
        # A star first lets go (lazy) and only then takes more: its own thread comes after everything
        # its letting go reaches.
        stars: list[tuple[int, Spans]] = []
        while pc not in seen:
            seen.add(pc)
            if pc < end and tokens[pc] == "*":
                n = slot[pc]
                spans = spans[:n] + ((spans[n][0] if spans[n][0] >= 0 else at, at),) + spans[n + 1:]
                stars.append((pc, spans))
                pc += 1
                continue
            out.append((pc, spans))
            break
        out.extend(reversed(stars))

    threads: list[tuple[int, Spans]] = []
    follow(0, ((-1, -1),) * len(slot), 0, threads, set())
    for at, ch in enumerate(text):
        if tick is not None and at % TICK == TICK - 1:
            tick()
        following: list[tuple[int, Spans]] = []
        seen: set[int] = set()
        for pc, spans in threads:
            if pc == end:
                continue
            token = tokens[pc]
            if token == "*":
                n = slot[pc]
                follow(pc, spans[:n] + ((spans[n][0], at + 1),) + spans[n + 1:], at + 1, following, seen)
            elif _accepts(token, ch):
                if token == "?":
                    n = slot[pc]
                    spans = spans[:n] + ((at, at + 1),) + spans[n + 1:]
                follow(pc + 1, spans, at + 1, following, seen)
        if not following:
            return None
        threads = following
    for pc, spans in threads:
        if pc == end:
            source = text if source is None else source
            return [source, *(source[a:b] for a, b in spans)][:MAX_MATCH_VARIABLES]
    return None


def _number(text: str) -> int | None:
    """i;ascii-numeric (RFC 4790 §9.1): the leading digits as a number; None (positive infinity) when the
    text does not begin with a digit."""
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return int(text[:end]) if end else None


def _order(a: str, b: str, comparator: str) -> int:
    if comparator == "i;ascii-numeric":
        x, y = _number(a), _number(b)
        if x is None or y is None:
            return (x is None) - (y is None)  # infinity equals infinity, exceeds every number
        return (x > y) - (x < y)
    a, b = fold(a, comparator), fold(b, comparator)
    return (a > b) - (a < b)


_RELATION = {"gt": lambda c: c > 0, "ge": lambda c: c >= 0, "lt": lambda c: c < 0, "le": lambda c: c <= 0,
             "eq": lambda c: c == 0, "ne": lambda c: c != 0}


def relation(value: str, key: str, how: Match) -> bool:
    return bool(_RELATION[how.relation](_order(value, key, how.comparator)))


def compare(value: str, key: str, how: Match, tick: Tick | None = None) -> bool:
    """One value against one key (keys and patterns already expanded)."""
    if how.match == ":value":
        return relation(value, key, how)
    if how.comparator == "i;ascii-numeric":  # :is only (refused with :contains and :matches)
        # An empty value is only the empty key, as Pigeonhole's :is has it (RFC 4790 would call "" and
        # "b" both infinite, hence equal; :value "eq" still does).
        return key == "" if value == "" else _order(value, key, how.comparator) == 0
    folded, k = fold(value, how.comparator), fold(key, how.comparator)
    if how.match == ":is":
        return folded == k
    if how.match == ":contains":
        return k in folded
    return matches(folded, k, tick)
