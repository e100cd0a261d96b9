"""Sieve (RFC 5228), issue #12: users' mail rules, run at local delivery.

``compile_script`` parses a script with sievelib's parser (DESIGN.md §7: there is no usable Python
interpreter; the parser may be used) into our own tree, refusing what we do not run, with the line
and column of the fault. ``run`` evaluates the tree against a message and answers the actions, the way
Dovecot Pigeonhole would (tests/protocol/test_sieve_differential.py compares the two on the same
scripts and messages).

This first part runs RFC 5228's core (require, if/elsif/else, stop, keep, discard, redirect; the tests
address, envelope, header, exists, size, allof, anyof, not, true, false; :is, :contains and :matches
with the comparators i;ascii-casemap and i;octet; :all, :localpart and :domain) with fileinto (RFC 5228
§4.1), reject and ereject (RFC 5429), copy (RFC 3894) and imap4flags (RFC 5232). The other extensions
of issue #12 are refused when a script requires them.
"""

from dizimail.services.sieve.compile import CompileError, Script, compile_script
from dizimail.services.sieve.interpret import Outcome, Store, run

__all__ = ["CompileError", "Outcome", "Script", "Store", "compile_script", "run"]
