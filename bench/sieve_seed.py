"""Store and activate a 20-rule Sieve script for user0001 … userNNNN (bench/sieve_up.sh): the services'
own call, as ManageSieve and the CLI make it, beside the running node (which sees the scripts at its next
message)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from dizimail.app.build import open_services
from dizimail.cli.common import as_service_user
from dizimail.config.loader import load_config

RULES = [
    'if header :contains "list-id" "<announce.lists.example>" { fileinto :create "Lists/announce"; stop; }',
    'if header :contains "list-id" "<dev.lists.example>" { fileinto :create "Lists/dev"; stop; }',
    'if address :domain :is "from" ["vendor-a.example", "vendor-b.example"] { fileinto :create "Vendors"; }',
    'if address :is "from" "boss@partner.example" { addflag "\\\\Flagged"; }',
    'if header :matches "subject" "*[发票]*" { fileinto :create "财务/发票"; }',
    'if header :contains "subject" ["invoice", "receipt", "报销"] { fileinto :create "财务"; }',
    'if header :is "x-spam-flag" "YES" { fileinto :create "Junk"; stop; }',
    'if exists "x-mailing-list" { fileinto :create "Lists/other"; }',
    'if size :over 20M { fileinto :create "Large"; }',
    'if header :contains "precedence" ["bulk", "junk"] { fileinto :create "Bulk"; }',
    'if address :localpart :is "to" "noreply" { discard; stop; }',
    'if header :matches "from" "*@*.cn" { addflag "cn"; }',
    'if anyof (header :contains "subject" "urgent", header :contains "x-priority" "1") { addflag "urgent"; }',
    'if allof (address :domain :is "from" "plant.example", header :contains "subject" "检修") '
    '{ fileinto :create "检修"; }',
    'if header :contains "subject" "[JIRA]" { fileinto :create "Jira"; }',
    'if header :matches "subject" "Re: *Re: *Re: *" { addflag "thread"; }',
    'if address :all :is "cc" "archive@example.test" { fileinto :copy :create "Archive"; }',
    'if not exists "date" { addflag "nodate"; }',
    'if header :contains "auto-submitted" "auto-replied" { fileinto :create "Auto"; }',
    'if size :under 1M { addflag "small"; }',
]
SCRIPT = 'require ["fileinto", "mailbox", "imap4flags", "copy"];\n' + "\n".join(RULES) + "\n"


async def seed(config_file: Path, users: int) -> None:
    config = load_config(config_file)
    as_service_user(config, config_file)  # as the CLI does: the node's files stay the service user's
    async with open_services(config) as services:
        started = time.monotonic()
        for n in range(1, users + 1):
            account = await services.accounts.get_user(f"user{n:04d}@example.test")
            await services.sieve.put(account.id, "rules", SCRIPT, activate=True)
        print(f"sieve: {len(RULES)}-rule script active for {users} users in {time.monotonic() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(seed(args.config, args.users))


if __name__ == "__main__":
    main()
