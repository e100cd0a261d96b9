"""The statistical content classifier (anti-spam layer 4): Robinson's token probabilities combined by
Fisher's chi-square method (as SpamBayes), giving 0 (ham) to 10 (spam).

f(w) = (s·x + n·p(w)) / (s + n), p(w) = (spam share of w) / (spam share + ham share), n = messages
with w; the 150 tokens furthest from 0.5 (at least 0.1 away) are combined:
S = 1 − χ²Q(−2 Σ ln(1 − f), 2N), H = 1 − χ²Q(−2 Σ ln f, 2N), I = (1 + S − H) / 2.

The score is I on a log-odds scale: 5 + (2/3)·log10(I / (1 − I)), clamped to 0–10. So 5 is even odds
(no evidence, or evidence that cancels), 7 is odds of 1,000 to 1 that it is spam (the Junk folder),
9 a million to one (refused at DATA). On the SpamAssassin corpus the linear 10·I put newsletters the
user wanted at 9.7–9.98 (bench/spam_eval.py; docs/antispam.md): I crowds everything confident
against 10, the log-odds keep the last decimals apart, with 1 − I computed without cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

UNKNOWN_STRENGTH = 0.45  # s
UNKNOWN_PROB = 0.5  # x
MIN_STRENGTH = 0.1
MAX_CLUES = 150


def chi2q(x2: float, v: int) -> float:
    """P(χ² ≥ x2) with ``v`` (even) degrees of freedom."""
    m = x2 / 2.0
    term = math.exp(-m)
    total = term
    for i in range(1, v // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


@dataclass
class Model:
    """Token counts: messages learnt as spam and as ham, and per token how many of each held it."""

    nspam: int = 0
    nham: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)  # token → [spam, ham]

    def learn(self, tokens: Iterable[str], spam: bool, sign: int = 1) -> None:
        """Count (``sign`` 1) or uncount (-1: a message learnt the other way before) one message."""
        index = 0 if spam else 1
        if spam:
            self.nspam = max(self.nspam + sign, 0)
        else:
            self.nham = max(self.nham + sign, 0)
        counts = self.counts
        for token in tokens:
            pair = counts.get(token)
            if pair is None:
                if sign < 0:
                    continue
                pair = counts[token] = [0, 0]
            pair[index] = max(pair[index] + sign, 0)

    def probability(self, token: str) -> float | None:
        """f(w), or None for a token never seen."""
        pair = self.counts.get(token)
        if pair is None:
            return None
        spam, ham = pair
        n = spam + ham
        if n == 0:
            return None
        spam_ratio = spam / self.nspam if self.nspam else 0.0
        ham_ratio = ham / self.nham if self.nham else 0.0
        total = spam_ratio + ham_ratio
        p = spam_ratio / total if total else UNKNOWN_PROB
        return (UNKNOWN_STRENGTH * UNKNOWN_PROB + n * p) / (UNKNOWN_STRENGTH + n)

    def clues(self, tokens: Iterable[str]) -> list[tuple[float, str]]:
        """The tokens that decide, strongest first: (f(w), token)."""
        found = []
        for token in tokens:
            p = self.probability(token)
            if p is not None and abs(p - 0.5) >= MIN_STRENGTH:
                found.append((p, token))
        found.sort(key=lambda pt: (-abs(pt[0] - 0.5), pt[1]))
        return found[:MAX_CLUES]

    def score(self, tokens: Iterable[str]) -> tuple[float, list[tuple[float, str]]]:
        """(0..10, the clues) for a message's tokens; 5 when there is no evidence."""
        clues = self.clues(tokens)
        if not clues or not self.nspam or not self.nham:
            return 5.0, clues
        s_ln = h_ln = 0.0
        for p, _token in clues:
            p = min(max(p, 1e-9), 1 - 1e-9)
            s_ln += math.log(1.0 - p)
            h_ln += math.log(p)
        n = 2 * len(clues)
        not_spam = chi2q(-2.0 * s_ln, n)  # 1 − S, kept exact when S is near 1
        not_ham = chi2q(-2.0 * h_ln, n)  # 1 − H
        odds = max((1.0 - not_spam) + not_ham, 1e-300) / max(not_spam + (1.0 - not_ham), 1e-300)
        return min(max(5.0 + (2.0 / 3.0) * math.log10(odds), 0.0), 10.0), clues
