"""How the CLI says an error: one line, a field it took as an option named as that option, and its fix as a command.

The core's messages name fields and things; the commands and flags that put them right are the CLI's to say.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from queue_core.errors import InvalidInput, JobledgerError, Remedy

__all__ = ["one_line"]

# {subject}: the name the error carries; {run}: the command's workflow run.
_COMMANDS = {
    Remedy.STORE_SECRET: "store one with `jobledger secret set NAME`",
    Remedy.PASSWORD_SECRET: "store it with `jobledger secret set NAME` and give --password-secret NAME",
    Remedy.SET_SECRET: "store it with `jobledger secret set {subject}`",
    Remedy.ADD_DEPOT: "add it with `jobledger depot add {subject} --type ...`",
    Remedy.ADD_RESOURCE: "add it with `jobledger resource add {subject} FILE`",
    Remedy.CREATE_CLUSTER: "create it with `jobledger cluster create {subject}`",
    Remedy.CREATE_POOL: "create it with `jobledger pool create {subject} --slots N`",
    Remedy.RERUN_DOWNSTREAM: (
        "`jobledger workflow rerun {run} {subject} --downstream`, or `jobledger workflow repair {run}`"
    ),
    Remedy.SUBMIT_NOW: "to run now, use `jobledger submit`",
    Remedy.END_MAINTENANCE: "see `jobledger maintenance status`; end it with `jobledger maintenance clear`",
}


def one_line(exc: JobledgerError, args: argparse.Namespace) -> str:
    """``exc`` as the CLI prints it after ``jobledger: ``.

    ``args.cli_options`` maps the command's option destinations to their flags: a field that is one of
    them is shown as the flag the user typed (``--password-secret``, not ``password_secret``).
    """
    text = str(exc)
    options: Mapping[str, str] = getattr(args, "cli_options", {})
    if isinstance(exc, InvalidInput) and exc.field:
        flag = options.get(exc.field.replace("-", "_"))
        if flag is not None:
            text = f"{flag}: {exc.detail}"
    command = _COMMANDS.get(exc.remedy) if exc.remedy is not None else None
    if command is not None:
        text = f"{text}; {command.format(subject=exc.subject or 'NAME', run=getattr(args, 'run', None) or 'WRUN')}"
    return printable(text)


def printable(text: str) -> str:
    """``text`` on one line with every control character (newline, terminal escape) shown as its escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
