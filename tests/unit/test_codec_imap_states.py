"""The connection states each IMAP command is valid in (RFC 9051 §3 and the extensions' RFCs)."""

from __future__ import annotations

import dataclasses
import typing

from dizimail.codec.imap import commands as c
from dizimail.codec.imap.commands import AFTER_LOGIN, ANY_STATE, BEFORE_LOGIN, WITH_MAILBOX

EXPECTED = {
    ANY_STATE: {"Capability", "Noop", "Logout", "Id"},
    BEFORE_LOGIN: {"StartTls", "Authenticate", "Login"},
    AFTER_LOGIN: {"Enable", "Select", "Create", "Delete", "Rename", "Subscribe", "Unsubscribe", "List", "Lsub",
                  "Namespace", "Status", "Append", "Idle", "Compress", "GetQuota", "GetQuotaRoot", "SetQuota",
                  "Notify", "Unauthenticate"},
    WITH_MAILBOX: {"Check", "Close", "Unselect", "Expunge", "Search", "Fetch", "Store", "Copy", "Move", "Sort",
                   "Thread", "CancelUpdate"},
}


def test_every_command_says_where_it_is_valid():
    commands = typing.get_args(c.Command)
    assert {k.__name__ for names in EXPECTED.values() for k in commands if k.__name__ in names} == {
        k.__name__ for k in commands}
    for states, names in EXPECTED.items():
        for kind in commands:
            if kind.__name__ in names:
                assert kind.states == states, kind.__name__


def test_states_are_a_class_attribute_not_a_field():
    assert c.Check().states == WITH_MAILBOX
    assert c.Login("u", "p") == c.Login("u", "p", tag="x")
    assert "states" not in {f.name for f in dataclasses.fields(c.Login)}
