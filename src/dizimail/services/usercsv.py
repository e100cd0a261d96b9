"""The users' CSV file (``dizimail user import|export`` and the REST API's import and export): rows
``address,password[,quota,name]``, or with a header, columns by name (what ``export`` writes:
``address,password,quota,name,status,used``, the password as its argon2id hash, re-importable)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from dizimail.i18n.catalog import translate
from dizimail.model.types import Account
from dizimail.util.units import parse_size

Row = tuple[str, str, str, int]  # address, password (or an argon2id hash), name, quota bytes
Problem = tuple[int, str, str]  # line number, the catalogue key of what is wrong, the value at fault


def problem_text(problem: Problem, lang: str = "en") -> str:
    """What is wrong with a line, in ``lang`` (without its number)."""
    _line, key, detail = problem
    return translate(key, lang) + (f" {detail}" if detail else "")


def parse_user_csv(text: str) -> tuple[list[tuple[int, Row]], list[Problem]]:
    """Rows ``address,password[,quota,name]``; with a header line, columns are taken by name and
    extra columns (as written by ``user export``) are ignored."""
    rows: list[tuple[int, Row]] = []
    problems: list[Problem] = []
    columns = {"address": 0, "password": 1, "quota": 2, "name": 3}
    positional = True
    for lineno, fields in enumerate(csv.reader(io.StringIO(text)), 1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and fields[0].strip().lower() == "address":
            header = [f.strip().lower() for f in fields]
            if "password" not in header:
                problems.append((1, "csv_header", ""))
                return rows, problems
            columns = {name: header.index(name) for name in ("address", "password", "quota", "name")
                       if name in header}
            positional = False
            continue
        if positional and not 2 <= len(fields) <= 4 or len(fields) <= max(columns["address"], columns["password"]):
            problems.append((lineno, "csv_columns", ""))
            continue
        value = {name: fields[i].strip() if i < len(fields) else "" for name, i in columns.items()}
        try:
            quota = parse_size(value["quota"]) if value.get("quota") else 0
        except ValueError:
            problems.append((lineno, "csv_quota", repr(value["quota"])))
            continue
        rows.append((lineno, (value["address"], fields[columns["password"]], value.get("name", ""), quota)))
    return rows, problems


def export_users_csv(users: Iterable[Account]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["address", "password", "quota", "name", "status", "used"])
    for u in users:
        writer.writerow([u.address, u.password_hash, u.quota_bytes, u.name, u.status, u.used_bytes])
    return out.getvalue()
