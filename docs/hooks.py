"""mkdocs hooks: the reference pages generated from the code itself, so they cannot drift from it.

A generated page is a stub in ``docs/reference/`` holding a marker line such as ``<!-- generated: cli -->``;
``on_page_markdown`` replaces the marker with markdown built here from the live objects:

- ``cli``: the ``jobledger`` argparse parser, walked recursively (usage, help, every argument);
- ``events``: every event class on the log (type name, schema version, docstring, fields) and the envelope;
- ``redis-keys``: the ``Keys`` templates with their comments and docstrings.

The Python API page needs no marker: mkdocstrings renders ``::: queue_core.client.Client`` from docstrings.
``tests/test_docs.py`` loads this module too (the CLI's commands and options, to check the docs' synopses).

Every import of a queue_core module for the docs is in the block below, so a module that moves is repointed
in one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

# -- the only imports of queue_core for the docs ------------------------------------------------------
events_module = importlib.import_module("queue_core.eventlog.events")  # every Event subclass, event_types(), encode()
keys_module = importlib.import_module("queue_core.keys")  # the Keys templates
cli_main = importlib.import_module("queue_core.cli.main")  # _parser(): the jobledger command line

# ------------------------------------------------------------------------------------------------------

__all__ = ["cli_commands", "cli_reference", "event_catalogue", "on_page_markdown", "redis_keys"]

USAGE_WIDTH = 100
# What a flag means on every command that has it, where its own help says nothing.
COMMON_HELP = {"--json": "print JSON instead of text"}
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


# -- the CLI ----------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    return cli_main._parser()


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand of ``parser``, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_text: str = ""
) -> Iterator[tuple[tuple[str, ...], str, argparse.ArgumentParser]]:
    """Every command, depth first: its path of subcommand names, its help, its parser."""
    yield path, help_text, parser
    for name, sub_help, sub in _subcommands(parser):
        yield from _walk(sub, (*path, name), sub_help)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]


def _argument_row(action: argparse.Action) -> str:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
    else:
        name = str(action.metavar or action.dest)
        if action.nargs in ("*", "?"):
            name = f"[{name}]" + (" ..." if action.nargs == "*" else "")
    notes = []
    if action.choices:
        notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.required and action.option_strings:
        notes.append("required")
    if action.nargs != 0 and action.default not in (None, [], "", argparse.SUPPRESS):
        notes.append(f"default `{action.default}`")
    if isinstance(action, argparse._AppendAction):
        notes.append("repeatable")
    own = action.help or next((COMMON_HELP[o] for o in action.option_strings if o in COMMON_HELP), "")
    described = _cell("; ".join(filter(None, [own, *notes])))
    return f"| `{name}` | {described} |"


def cli_reference() -> str:
    """Markdown for every ``jobledger`` command: usage, help and arguments, from the parser."""
    parser = _parser()
    out = [parser.description or "", ""]
    for path, help_text, sub in _walk(parser):
        if not path:
            continue
        out.append(f"{'#' * min(len(path) + 1, 4)} jobledger {' '.join(path)}")
        out.append("")
        if help_text:
            out += [help_text[:1].upper() + help_text[1:] + ("" if help_text.endswith(".") else "."), ""]
        out += ["```text", _usage(sub), "```", ""]
        rows = [_argument_row(action) for action in _arguments(sub)]
        if rows:
            out += ["| argument | meaning |", "| --- | --- |", *rows, ""]
        children = [name for name, _, _ in _subcommands(sub)]
        if children:
            out += ["Subcommands: " + ", ".join(f"`{name}`" for name in children) + ".", ""]
    return "\n".join(out)


def cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command path (``("workflow", "run")``) with the option strings it accepts."""
    return {
        path: {option for action in sub._actions for option in action.option_strings}
        for path, _help, sub in _walk(_parser())
    }


# -- events -------------------------------------------------------------------------------------------------


def _own_docstring(cls: type) -> str:
    """The class's own docstring; none for the signature a dataclass writes when there is none."""
    doc = cls.__dict__.get("__doc__") or ""
    if not doc or doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc)


def _sections(module: Any) -> list[tuple[int, str]]:
    """The ``# -- title ---`` comment lines of a module's source: (line number, title)."""
    lines = inspect.getsource(module).splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        match = re.match(r"^# -- (.+?) -{3,}$", line)
        if match:
            found.append((number, match.group(1)))
    return found


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    if field.default_factory is not dataclasses.MISSING:
        return f"`{field.default_factory()!r}`"
    return "required"


def _envelope_example() -> str:
    sample = events_module.SecretSet(name="NAME")
    new = events_module.NewEvent("secret:NAME", sample, event_id="EVENT-ID")
    return events_module.encode(new, 1, "2026-11-21T08:00:00.000000Z").decode()


def event_catalogue() -> str:
    """Markdown for the envelope and every event type, grouped as ``events.py`` groups them."""
    types = events_module.event_types()
    sections = _sections(events_module)
    grouped: dict[str, list[tuple[str, type]]] = {}
    for name, cls in types.items():
        line = inspect.getsourcelines(cls)[1]
        title = next((t for n, t in reversed(sections) if n < line), "events")
        grouped.setdefault(title, []).append((name, cls))
    out = [
        "Each entry of the log holds one envelope, as JSON (this one generated by `encode`):",
        "",
        "```json",
        _envelope_example(),
        "```",
        "",
        "`id`: the event id chosen before the append (a retried append carries the same one); `type`: the event "
        "type below; `agg`: the aggregate; `v`: its version; `t`: the append time; `sv`: the event's schema "
        "version (older ones are upcast when read); `d`: the event's fields.",
        "",
        f"{len(types)} event types:",
        "",
    ]
    for title, members in grouped.items():
        heading = (title[:1].upper() + title[1:]).replace("<", "&lt;")
        out += [f"## {heading}", ""]
        for name, cls in members:
            out += [f"### {name}", ""]
            doc = _own_docstring(cls)
            if doc:
                out += [doc, ""]
            schema = getattr(cls, "schema_version", 1)
            if schema > 1:
                out += [f"Schema version {schema}: entries written at an older one are upcast when read.", ""]
            fields = dataclasses.fields(cls)
            if fields:
                out += ["| field | type | default |", "| --- | --- | --- |"]
                out += [f"| `{f.name}` | `{f.type}` | {_default(f)} |" for f in fields]
                out.append("")
    return "\n".join(out)


# -- Redis keys -------------------------------------------------------------------------------------------


def _attribute_comments(function: Callable[..., Any]) -> dict[str, str]:
    """The comment lines right above each ``self.NAME = ...`` in a function's source."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(function).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"self\.(\w+)\s*=", stripped)
        if match and pending:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def redis_keys() -> str:
    """Markdown for every key template of ``Keys``, with the default prefix."""
    keys_class = keys_module.Keys
    keys = keys_class()
    comments = _attribute_comments(keys_class.__init__)
    out = ["## Fixed keys", "", "| attribute | key | what |", "| --- | --- | --- |"]
    for name, value in vars(keys).items():
        if name == "prefix":
            continue
        out.append(f"| `{name}` | `{value}` | {_cell(comments.get(name, ''))} |")
    out += ["", "## Keys per entity", "", "| template | key | what |", "| --- | --- | --- |"]
    for name, method in inspect.getmembers(keys_class, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        key = getattr(keys, name)(*(p.upper() for p in params))
        doc = _cell(inspect.getdoc(method) or "")
        out.append(f"| `{name}({', '.join(params)})` | `{key}` | {doc} |")
    out += ["", f"The prefix is `{keys.prefix}` (`{keys_module.__name__}.PREFIX`)."]
    return "\n".join(out)


# -- the hook -------------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "events": event_catalogue,
    "redis-keys": redis_keys,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line by what NAME's generator makes."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"no generator named {name!r} (known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)
