"""The condition language of ``CONDITION`` tasks: a hand-written tokenizer, parser and evaluator, never ``eval``.

An expression compares values: numbers, strings (single or double quotes), ``true``, ``false``, ``null`` and
task values ``${tasks.NAME.values.KEY}``, with ``== != < <= > >=``, combined by ``and``, ``or``, ``not`` and
parentheses. ``parse`` checks the text (``InvalidInput`` naming the position); ``evaluate`` decides it over
the values the upstream tasks published (``ConditionError`` naming what is missing or mistyped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from queue_core.errors import InvalidInput, JobledgerError

__all__ = ["MAX_CONDITION_CHARS", "ConditionError", "evaluate", "parse", "references"]

MAX_CONDITION_CHARS = 2000
MAX_NESTING = 32  # parentheses and ``not``s deep: the parser recurses, so its depth is capped here
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<ref>\$\{tasks\.(?P<task>[A-Za-z0-9][A-Za-z0-9_.-]*?)\.values\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)\})
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<word>[A-Za-z_]+)
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<paren>[()])""",
    re.VERBOSE,
)
_WORDS = {"true": True, "false": False, "null": None}

Node = tuple[Any, ...]  # ("lit", value) | ("ref", task, key) | ("not", n) | ("and"|"or", n, ...) | ("cmp", op, a, b)
Lookup = Callable[[str, str], Any]  # (task, key) -> the value; raises ConditionError when there is none


class ConditionError(JobledgerError):
    """Raised when a parsed condition cannot be decided: a value missing, or of a type the operator refuses."""


def _tokens(text: str, field: str) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            if text.startswith("${", at):
                raise InvalidInput(f"a reference at position {at + 1} must be ${{tasks.NAME.values.KEY}}", field)
            raise InvalidInput(f"does not parse at position {at + 1}: unexpected {text[at]!r}", field)
        kind = match.lastgroup
        if kind == "ref":
            out.append(("ref", (match.group("task"), match.group("key")), at))
        elif kind == "number":
            raw = match.group(kind)
            out.append(("lit", float(raw) if any(c in raw for c in ".eE") else int(raw), at))
        elif kind == "string":
            raw = match.group(kind)[1:-1]
            out.append(("lit", re.sub(r"\\(.)", r"\1", raw), at))
        elif kind == "word":
            word = match.group(kind)
            if word in _WORDS:
                out.append(("lit", _WORDS[word], at))
            elif word in ("and", "or", "not"):
                out.append((word, word, at))
            else:
                raise InvalidInput(f"does not parse at position {at + 1}: unknown word {word!r}", field)
        elif kind in ("op", "paren"):
            out.append((match.group(kind), match.group(kind), at))
        at = match.end()
    return out


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.tokens = _tokens(text, field)
        self.at = 0

    def _fail(self, expected: str) -> InvalidInput:
        if self.at >= len(self.tokens):
            return InvalidInput(f"does not parse at position {len(self.text) + 1}: expected {expected}, found the end",
                                self.field)  # fmt: skip
        kind, value, pos = self.tokens[self.at]
        found = repr(value) if kind == "lit" else self.text[pos : pos + 20].split()[0]
        return InvalidInput(f"does not parse at position {pos + 1}: expected {expected}, found {found}", self.field)

    def _peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def parse(self) -> Node:
        if not self.tokens:
            raise InvalidInput("must not be empty", self.field)
        node = self._or(0)
        if self.at < len(self.tokens):
            raise self._fail("and, or or the end")
        return node

    def _or(self, depth: int) -> Node:
        nodes = [self._and(depth)]
        while self._peek() == "or":
            self.at += 1
            nodes.append(self._and(depth))
        return nodes[0] if len(nodes) == 1 else ("or", *nodes)  # flat: a long chain adds no depth

    def _and(self, depth: int) -> Node:
        nodes = [self._not(depth)]
        while self._peek() == "and":
            self.at += 1
            nodes.append(self._not(depth))
        return nodes[0] if len(nodes) == 1 else ("and", *nodes)

    def _not(self, depth: int) -> Node:
        if self._peek() == "not":
            if depth >= MAX_NESTING:
                raise self._fail(f"at most {MAX_NESTING} levels of not and parentheses")
            self.at += 1
            return ("not", self._not(depth + 1))
        left = self._operand(depth)
        if self._peek() in _COMPARISONS:
            op = self.tokens[self.at][0]
            self.at += 1
            return ("cmp", op, left, self._operand(depth))
        return left

    def _operand(self, depth: int) -> Node:
        kind = self._peek()
        if kind == "(":
            if depth >= MAX_NESTING:
                raise self._fail(f"at most {MAX_NESTING} levels of not and parentheses")
            self.at += 1
            node = self._or(depth + 1)
            if self._peek() != ")":
                raise self._fail("')'")
            self.at += 1
            return node
        if kind == "lit":
            self.at += 1
            return ("lit", self.tokens[self.at - 1][1])
        if kind == "ref":
            self.at += 1
            task, key = self.tokens[self.at - 1][1]
            return ("ref", task, key)
        raise self._fail("a value, a reference or '('")


def parse(text: Any, field: str = "condition") -> Node:
    """The expression's tree, or ``InvalidInput`` naming the position where it stops making sense."""
    if not isinstance(text, str):
        raise InvalidInput("must be a string", field)
    if len(text) > MAX_CONDITION_CHARS:
        raise InvalidInput(f"must be at most {MAX_CONDITION_CHARS} characters", field)
    return _Parser(text, field).parse()


def references(node: Node) -> list[tuple[str, str]]:
    """Every ``(task, key)`` the expression reads, in order."""
    found: list[tuple[str, str]] = []
    todo = [node]
    while todo:
        current = todo.pop()
        if current[0] == "ref":
            found.append((current[1], current[2]))
        elif current[0] in ("not", "and", "or"):
            todo.extend(reversed(current[1:]))
        elif current[0] == "cmp":
            todo.extend((current[3], current[2]))
    return found


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _value(node: Node, lookup: Lookup, depth: int) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "ref":
        return lookup(node[1], node[2])
    if tag == "cmp":
        _, op, left_node, right_node = node
        left, right = _value(left_node, lookup, depth + 1), _value(right_node, lookup, depth + 1)
        if op in ("==", "!="):
            same = _kind(left) == _kind(right) and left == right
            return same if op == "==" else not same
        if _kind(left) != _kind(right) or _kind(left) not in ("number", "string"):
            raise ConditionError(f"cannot compare {_kind(left)} {left!r} {op} {_kind(right)} {right!r}"[:300])
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    if tag == "not":
        return not _boolean(_value(node[1], lookup, depth + 1), "not")
    for operand in node[1:]:  # and / or, decided left to right, stopping at the first that settles it
        if _boolean(_value(operand, lookup, depth + 1), tag) == (tag == "or"):
            return tag == "or"
    return tag == "and"


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"{where} needs true or false, not {_kind(value)} {value!r}"[:300])
    return value


def evaluate(text: str, lookup: Lookup) -> bool:
    """Decide the expression (parsed again: its text is what the plan keeps); ``ConditionError`` if it cannot.

    The tree is as deep as ``parse`` allows (``MAX_NESTING``), so the recursion here is bounded too.
    """
    return _boolean(_value(parse(text), lookup, 0), "a condition")
