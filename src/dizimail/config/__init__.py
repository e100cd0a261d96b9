"""Typed configuration: one pydantic model per TOML section, every key with a default and a doc.

The loader refuses insecure settings (open relay, plaintext AUTH) unless the
config says so explicitly. Nothing here is module-level state: the loaded
:class:`~dizimail.config.schema.Config` is passed to whoever needs it.
"""
