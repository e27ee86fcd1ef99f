"""The cost filter language: a subset of the commercial product's VQL.

    costs.service = 'Compute' AND tags.name = 'circleci:vcs_branch' AND tags.value = 'main'

Fields: costs.billing_account, costs.account, costs.service, costs.category,
costs.subcategory, costs.resource, costs.charge_type, tags.name, tags.value, and
vtags.<key> for each virtual tag in the store (`virtual_tags.py`). Operators: =, !=,
IN (...), NOT IN (...), LIKE, NOT LIKE; AND binds tighter than OR; parentheses group;
strings are single-quoted ('' inside for a quote).

A filter is parsed into a tree and compiled to SQL over the `costs` view in which every value
is a bound parameter; only column names from the tables below are ever written into the SQL.
A `tags.name = '<key>'` comparison is paired with the `tags.value` comparison next to it in
the same AND chain: together they mean "the tag <key> has that value".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from circlecost.errors import CirclecostError
from circlecost.vocabulary import TAG_COLUMNS

COST_FIELDS = {
    "costs.billing_account": "billing_account",
    "costs.account": "account",
    "costs.service": "service",
    "costs.category": "category",
    "costs.subcategory": "subcategory",
    "costs.resource": "resource",
    "costs.charge_type": "charge_type",
}
TAG_FIELDS = ("tags.name", "tags.value")
VTAG_PREFIX = "vtags."
MAX_FILTER_LENGTH = 10_000


class VQLError(CirclecostError):
    """A filter that cannot be used; `column` is 1-based and points at the problem."""

    def __init__(self, message: str, text: str, column: int) -> None:
        self.text = text
        self.column = column
        caret = " " * (column - 1) + "^"
        super().__init__(
            f"filter error at column {column}: {message}\n  {text}\n  {caret}",
            hint="Filters look like: costs.service = 'Compute' AND costs.account IN ('api', 'web')",
        )

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}"


@dataclass(frozen=True)
class Token:
    kind: str  # FIELD, STRING, OP, KEYWORD, LPAREN, RPAREN, COMMA, END
    text: str
    column: int


TOKEN_PATTERN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<unterminated>'(?:[^']|'')*$)
  | (?P<op>!=|<>|=)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE"}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_FILTER_LENGTH:
        raise VQLError(f"the filter is longer than {MAX_FILTER_LENGTH} characters", text[:60], 1)
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = TOKEN_PATTERN.match(text, position)
        if match is None:
            raise VQLError(f"unexpected character {text[position]!r}", text, position + 1)
        kind = match.lastgroup or ""
        column = position + 1
        position = match.end()
        if kind == "space":
            continue
        if kind == "unterminated":
            raise VQLError("this string has no closing quote (')", text, column)
        tokens.append(_classify(kind, match.group(), column, text))
    tokens.append(Token("END", "", len(text) + 1))
    return tokens


def _classify(kind: str, raw: str, column: int, text: str) -> Token:
    if kind == "string":
        return Token("STRING", raw[1:-1].replace("''", "'"), column)
    if kind == "op":
        return Token("OP", "!=" if raw == "<>" else raw, column)
    if kind in ("lparen", "rparen", "comma"):
        return Token(kind.upper(), raw, column)
    if raw.upper() in KEYWORDS:
        return Token("KEYWORD", raw.upper(), column)
    if raw in COST_FIELDS or raw in TAG_FIELDS or raw.startswith(VTAG_PREFIX):
        return Token("FIELD", raw, column)
    known = ", ".join([*COST_FIELDS, *TAG_FIELDS, "vtags.<key>"])
    raise VQLError(f"unknown field {raw!r}; known fields: {known}", text, column)


# The tree: a Comparison is a leaf; Logical joins children with AND or OR.
@dataclass(frozen=True)
class Comparison:
    field: str
    operator: str  # =, !=, IN, NOT IN, LIKE, NOT LIKE
    values: tuple[str, ...]
    column: int


@dataclass(frozen=True)
class Logical:
    operator: str  # AND, OR
    children: tuple[Node, ...]


Node = Comparison | Logical


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def parse(self) -> Node:
        if self.peek().kind == "END":
            raise VQLError("the filter is empty", self.text, 1)
        node = self.parse_or()
        end = self.peek()
        if end.kind != "END":
            raise VQLError(
                f"unexpected {end.text!r}: expected AND, OR or the end", self.text, end.column
            )
        return node

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept_keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "KEYWORD" and token.text == word:
            self.index += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            found = repr(token.text) if token.text else "the end of the filter"
            raise VQLError(f"expected {what}, found {found}", self.text, token.column)
        return self.take()

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.accept_keyword("OR"):
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Logical("OR", tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_primary()]
        while self.accept_keyword("AND"):
            children.append(self.parse_primary())
        return children[0] if len(children) == 1 else Logical("AND", tuple(children))

    def parse_primary(self) -> Node:
        if self.peek().kind == "LPAREN":
            self.take()
            node = self.parse_or()
            self.expect("RPAREN", "')'")
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        field = self.expect("FIELD", "a field such as costs.service")
        operator = self.parse_operator()
        if operator in ("IN", "NOT IN"):
            values = self.parse_list()
        else:
            values = (self.expect("STRING", "a quoted value such as 'Compute'").text,)
        return Comparison(field.text, operator, values, field.column)

    def parse_operator(self) -> str:
        token = self.peek()
        if token.kind == "OP":
            return self.take().text
        negated = self.accept_keyword("NOT")
        if self.accept_keyword("IN"):
            return "NOT IN" if negated else "IN"
        if self.accept_keyword("LIKE"):
            return "NOT LIKE" if negated else "LIKE"
        token = self.peek()
        found = repr(token.text) if token.text else "the end of the filter"
        raise VQLError(
            f"expected an operator (=, !=, IN, NOT IN, LIKE, NOT LIKE), found {found}",
            self.text,
            token.column,
        )

    def parse_list(self) -> tuple[str, ...]:
        self.expect("LPAREN", "'(' to start the list")
        values = [self.expect("STRING", "a quoted value").text]
        while self.peek().kind == "COMMA":
            self.take()
            values.append(self.expect("STRING", "a quoted value").text)
        self.expect("RPAREN", "')' to close the list")
        return tuple(values)


def parse(text: str) -> Node:
    return Parser(text).parse()


@dataclass(frozen=True)
class CompiledFilter:
    sql: str
    params: tuple[str, ...]

    def named(self, prefix: str) -> tuple[str, dict[str, str]]:
        """The same condition with named parameters ($<prefix>0, ...), for queries that bind
        by name. Compiled SQL holds no string literals, so every `?` is a parameter."""
        pieces = self.sql.split("?")
        names = [f"{prefix}{index}" for index in range(len(pieces) - 1)]
        sql = pieces[0] + "".join(
            f"${name}{piece}" for name, piece in zip(names, pieces[1:], strict=True)
        )
        return sql, dict(zip(names, self.params, strict=True))


# Virtual tag key -> the SQL expression of its value (with its parameters), for vtags.<key>.
VirtualColumns = dict[str, CompiledFilter]


class AnyVirtualTag(dict[str, CompiledFilter]):
    """Takes every vtags.<key>: for checking a filter where the store's virtual tags are not at
    hand (a budget's filter in the stack's config); the store checks the keys when it is used."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> CompiledFilter:
        return CompiledFilter("?", ("",))


def compile_filter(text: str, virtual: VirtualColumns | None = None) -> CompiledFilter:
    """Parses `text` and returns a SQL condition over the costs view with its parameters;
    `virtual` holds the virtual tags that `vtags.<key>` may name (none: no vtags allowed)."""
    params: list[str] = []
    sql = _Compiler(text, {} if virtual is None else virtual).compile(parse(text), params)
    return CompiledFilter(sql, tuple(params))


@dataclass(frozen=True)
class _Compiler:
    text: str
    virtual: VirtualColumns

    def compile(self, node: Node, params: list[str]) -> str:
        if isinstance(node, Comparison):
            if node.field.startswith(VTAG_PREFIX):
                return self.compile_virtual(node, params)
            return _compile_alone(node, params, self.text)
        if node.operator == "OR":
            return "(" + " OR ".join(self.compile(child, params) for child in node.children) + ")"
        return "(" + " AND ".join(self.compile_and_chain(node.children, params)) + ")"

    def compile_and_chain(self, children: tuple[Node, ...], params: list[str]) -> list[str]:
        parts: list[str] = []
        index = 0
        while index < len(children):
            child = children[index]
            nxt = children[index + 1] if index + 1 < len(children) else None
            if _is_tag_name_equals(child) and _is_tag_value(nxt):
                parts.append(_compile_value_test(_tag_column(child, self.text), nxt, params))
                index += 2
                continue
            parts.append(self.compile(child, params))
            index += 1
        return parts

    def compile_virtual(self, node: Comparison, params: list[str]) -> str:
        key = node.field.removeprefix(VTAG_PREFIX)
        if key not in self.virtual:
            known = ", ".join(self.virtual) or "none are defined"
            raise VQLError(
                f"unknown virtual tag {key!r}; virtual tags: {known}", self.text, node.column
            )
        expression = self.virtual[key]
        # Every test writes the expression once, so its parameters go first, once.
        params.extend(expression.params)
        # A virtual tag always has a value ((untagged) at worst), so no NULL case is needed.
        values = ", ".join("?" for _ in node.values)
        params.extend(node.values)
        if node.operator in ("IN", "NOT IN"):
            return f"({expression.sql} {node.operator} ({values}))"
        return f"({expression.sql} {node.operator} {values})"


def _is_tag_name_equals(node: Node | None) -> TypeGuard[Comparison]:
    return isinstance(node, Comparison) and node.field == "tags.name" and node.operator == "="


def _is_tag_value(node: Node | None) -> TypeGuard[Comparison]:
    return isinstance(node, Comparison) and node.field == "tags.value"


def _tag_column(node: Comparison, text: str) -> str:
    key = node.values[0]
    if key not in TAG_COLUMNS:
        raise VQLError(
            f"unknown tag {key!r}; known tags: {', '.join(TAG_COLUMNS)}", text, node.column
        )
    return TAG_COLUMNS[key]


def _compile_alone(node: Comparison, params: list[str], text: str) -> str:
    if node.field in COST_FIELDS:
        return _compile_value_test(COST_FIELDS[node.field], node, params)
    if node.field == "tags.name":
        return _compile_tag_presence(node, text)
    # A lone tags.value test matches a value of any tag.
    tests = [_compile_value_test(column, node, params) for column in TAG_COLUMNS.values()]
    joiner = " AND " if node.operator in ("!=", "NOT IN", "NOT LIKE") else " OR "
    return "(" + joiner.join(tests) + ")"


def _compile_tag_presence(node: Comparison, text: str) -> str:
    if node.operator in ("LIKE", "NOT LIKE"):
        raise VQLError("tags.name takes =, !=, IN or NOT IN", text, node.column)
    for key in node.values:
        if key not in TAG_COLUMNS:
            raise VQLError(
                f"unknown tag {key!r}; known tags: {', '.join(TAG_COLUMNS)}", text, node.column
            )
    columns = [TAG_COLUMNS[key] for key in node.values]
    if node.operator in ("=", "IN"):
        return "(" + " OR ".join(f"{column} IS NOT NULL" for column in columns) + ")"
    return "(" + " AND ".join(f"{column} IS NULL" for column in columns) + ")"


def _compile_value_test(column: str, node: Comparison, params: list[str]) -> str:
    operator = node.operator
    params.extend(node.values)
    if operator in ("IN", "NOT IN"):
        marks = ", ".join("?" for _ in node.values)
        test = f"{column} {operator} ({marks})"
    else:
        test = f"{column} {operator} ?"
    if operator.startswith("NOT") or operator == "!=":
        # SQL's NULL would drop rows without the value; "not equal" should keep them.
        return f"({column} IS NULL OR {test})"
    return test
