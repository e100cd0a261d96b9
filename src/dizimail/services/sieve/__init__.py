"""Sieve (RFC 5228), issue #12: users' mail rules, run at local delivery.

``compile_script`` parses a script (``codec.sieve``: the grammar, with line and column) into our own
tree, checking each command's arguments and refusing what we do not run, when the script is stored.
``run`` evaluates the tree against a message and answers the actions, the way Dovecot Pigeonhole would
(tests/protocol/test_sieve_differential.py compares the two on the same scripts and messages).
``scripts`` keeps users' scripts (ManageSieve, the CLI, the web); ``deliver`` applies the actions at
local delivery; ``reports`` writes the mail they send back.
"""

from dizimail.services.sieve.compile import CompileError, Script, compile_script
from dizimail.services.sieve.interpret import Outcome, Store, run

__all__ = ["CompileError", "Outcome", "Script", "Store", "compile_script", "run"]
