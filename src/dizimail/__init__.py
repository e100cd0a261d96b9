"""dizimail: a complete, self-hosted enterprise mail system.

The package is laid out by role (see docs/architecture.md): wire codecs in
``codec``, value types in ``model``, storage contracts in ``interfaces`` and
their implementations in ``storage``, the core API in ``services``, protocol
front-ends in ``smtp``/``pop3``, the composition root in ``app`` and the
command line in ``cli``.
"""

__version__ = "0.1.0"
