"""``dizimail list``: mailing lists (邮件列表, issue #12; docs/lists.md) from the command line, on the same
service as the REST API and the admin pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.lists import ListChange
from dizimail.services.admin import list_state

list_app = typer.Typer(help="Mailing lists: members, posting policy, moderation.", no_args_is_help=True)
app.add_typer(list_app, name="list")
ListArg = Annotated[str, typer.Argument(help="the list's address")]
Addresses = Annotated[list[str] | None, typer.Option(help="an address (repeat the option for more)")]
PolicyOpt = Annotated[str | None, typer.Option("--policy", help="who may post: anyone, members, moderated or senders")]
SubscriptionOpt = Annotated[str | None, typer.Option(
    "--subscription", help="confirm: anyone may subscribe by mail with a confirmation; closed: admins only")]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else ""


@list_app.command("add")
def add(address: ListArg, member: Annotated[list[str] | None, typer.Option(
            "--member", help="a member: an address (user, alias, external) or @domain (every user of it); repeat")] = None,
        policy: PolicyOpt = None, name: Annotated[str, typer.Option(help="the list's name")] = "",
        moderator: Annotated[list[str] | None, typer.Option(help="a moderator's address; repeat")] = None,
        sender: Annotated[list[str] | None, typer.Option(help="a sender who may always post; repeat")] = None,
        subscription: SubscriptionOpt = None,
        archive: Annotated[str, typer.Option(help="a local user who keeps every post in Lists/<list>")] = "",
        config: ConfigOpt = None) -> None:
    """Create a list."""
    async def job(s: Services) -> Any:
        return await s.admin.change_list(
            cli_actor(), "list.add", address.strip().lower(),
            lambda: s.lists.create(address, name=name, policy=policy or "members", members=member or [],
                                   moderators=moderator or [], senders=sender or [],
                                   subscription=subscription or "confirm", archive=archive), after=list_state)
    made = run(config, job)
    console.print(f"list {made.address} created: policy {made.policy}, {made.members} member(s)")


@list_app.command("remove")
def remove(address: ListArg, config: ConfigOpt = None) -> None:
    """Delete a list, its members and the posts waiting for its moderators."""
    async def job(s: Services) -> None:
        mlist = await s.lists.get(address)
        await s.admin.change_list(cli_actor(), "list.remove", mlist.address, lambda: s.lists.remove(address),
                                  before=list_state(mlist))
    run(config, job)
    console.print(f"list {address} removed")


@list_app.command("show")
def show(address: Annotated[str | None, typer.Argument(help="one list (default: all)")] = None,
         domain: Annotated[str | None, typer.Option(help="the lists of one domain")] = None,
         as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The lists: address, policy, members."""
    async def job(s: Services) -> Any:
        return [await s.lists.get(address)] if address else await s.lists.all(domain)
    lists = run(config, job)
    if as_json:
        print_json([{"address": m.address, "name": m.name, "policy": m.policy, "members": m.members,
                     "moderators": list(m.moderators), "senders": list(m.senders), "subscription": m.subscription,
                     "archive": m.archive, "bounce_limit": m.bounce_limit} for m in lists])
        return
    print_table(("address", "name", "policy", "members", "moderators", "subscription", "archive"),
                [(m.address, m.name, m.policy, str(m.members), " ".join(m.moderators), m.subscription, m.archive)
                 for m in lists])


@list_app.command("members")
def members(address: ListArg, add: Addresses = None, remove: Addresses = None, as_json: JsonOpt = False,
            config: ConfigOpt = None) -> None:
    """Show the members, or add and remove some (--add A --add B, --remove C)."""
    async def job(s: Services) -> Any:
        changed = []
        mlist = await s.lists.get(address)
        if add:
            count = await s.admin.change_list(cli_actor(), "list.members.add", mlist.address,
                                              lambda: s.lists.add_members(address, add),
                                              after=lambda n: {"addresses": add[:100], "count": n})
            changed.append(f"added {count}")
        if remove:
            count = await s.admin.change_list(cli_actor(), "list.members.remove", mlist.address,
                                              lambda: s.lists.remove_members(address, remove),
                                              after=lambda n: {"addresses": remove[:100], "count": n})
            changed.append(f"removed {count}")
        return changed, await s.lists.members(address)
    changed, rows = run(config, job)
    if changed:
        console.print(", ".join(changed))
        return
    if as_json:
        print_json([{"address": m.address, "status": m.status, "bounces": m.bounces, "last_bounce": m.last_bounce,
                     "added": m.added} for m in rows])
        return
    print_table(("member", "status", "bounces", "last bounce", "added"),
                [(m.address, m.status, str(m.bounces), _when(m.last_bounce), _when(m.added)) for m in rows])


@list_app.command("policy")
def policy(address: ListArg, posting: Annotated[str | None, typer.Argument(
               help="who may post: anyone, members, moderated or senders")] = None,
           moderator: Addresses = None, sender: Addresses = None, subscription: SubscriptionOpt = None,
           name: Annotated[str | None, typer.Option(help="the list's name")] = None,
           archive: Annotated[str | None, typer.Option(help="a local user keeping every post; \"\" for none")] = None,
           bounce_limit: Annotated[int | None, typer.Option(help="hard bounces in a row that disable a member")] = None,
           config: ConfigOpt = None) -> None:
    """Change who may post (and the moderators, named senders, subscription, archive)."""
    change = ListChange(name=name, policy=posting, moderators=tuple(moderator) if moderator is not None else None,
                        senders=tuple(sender) if sender is not None else None, subscription=subscription,
                        archive=archive, bounce_limit=bounce_limit)

    async def job(s: Services) -> Any:
        mlist = await s.lists.get(address)
        return await s.admin.change_list(cli_actor(), "list.policy", mlist.address,
                                         lambda: s.lists.change(address, change), before=list_state(mlist),
                                         after=list_state)
    changed = run(config, job)
    console.print(f"list {changed.address}: policy {changed.policy}, moderators {' '.join(changed.moderators) or '-'}, "
                  f"senders {' '.join(changed.senders) or '-'}, subscription {changed.subscription}")


@list_app.command("moderate")
def moderate(address: ListArg, approve: Annotated[int | None, typer.Option(help="send this held post")] = None,
             reject: Annotated[int | None, typer.Option(help="refuse this held post (its sender is told)")] = None,
             reason: Annotated[str, typer.Option(help="why (with --reject)")] = "",
             as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The posts waiting for a moderator; --approve ID or --reject ID decides one."""
    if approve is not None and reject is not None:
        fail("give --approve or --reject, not both", 2)

    async def job(s: Services) -> Any:
        actor = cli_actor()
        by = f"cli:{actor.name}"
        mlist = await s.lists.get(address)
        if approve is not None:
            copies = await s.admin.change_list(actor, "list.approve", mlist.address,
                                               lambda: s.list_mail.approve(address, approve, by),
                                               after=lambda n: {"entry": approve, "local_copies": n})
            return f"approved: {copies} local copies"
        if reject is not None:
            await s.admin.change_list(actor, "list.reject", mlist.address,
                                      lambda: s.list_mail.reject(address, reject, by, reason),
                                      after=lambda _: {"entry": reject, "reason": reason})
            return "rejected"
        return await s.lists.held(address)
    result = run(config, job)
    if isinstance(result, str):
        console.print(result)
        return
    if as_json:
        print_json([{"id": e.id, "sender": e.sender, "from": e.from_, "subject": e.subject, "size": e.size,
                     "created": e.created, "expires": e.expires} for e in result])
        return
    print_table(("id", "received", "sender", "subject", "size"),
                [(str(e.id), _when(e.created), e.sender, e.subject, str(e.size)) for e in result])
