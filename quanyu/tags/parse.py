"""Text form of the rule language: :func:`parse` reads it, :func:`to_text` writes it.

The meaning of a rule is in :mod:`quanyu.tags.rules`. The grammar, in short: ``or`` binds
looser than ``and``, which binds looser than ``not``, which binds looser than a comparison
(``= != < <= > >= contains``, ``[not] in (...)``, ``is [not] null``, ``between x and y``).
Operands are literals, ``traits.city`` (``traits."城市"`` for other characters), ``brand``,
``channel``, ``tag("k")``, ``identifier("type"[, "scope"])``, ``ago(30d)``, ``now()``,
``date("2024-06-01")``, ``case when ... then ... else ... end`` and aggregates such as
``sum(amount, event = "Order Completed", within 90d)``: the field first (not for count,
first, last), then filters on event fields, then the window: ``within 90d``, ``between
"2024-01-01" and "2024-07-01"`` (until exclusive), or one end, ``since``/``until "..."``.

``to_text`` prints the canonical form (lowercase keywords, minimal parentheses,
double-quoted strings) and ``parse(to_text(n)) == n`` for every tree that passes
:func:`quanyu.tags.jsonform.check`. Every error is a :class:`RuleError` with the line and
column of the offending token and a hint on how to fix it.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import NoReturn, cast

from quanyu.tags import jsonform as jf
from quanyu.tags import rules as r

KEYWORDS = frozenset(("and", "or", "not", "in", "is", "null", "between", "within", "case",
                      "when", "then", "else", "end", "true", "false"))  # fmt: skip
FUNCTIONS = ("tag", "identifier", "ago", "now", "date", *r.AGGREGATES)
_OPS = {"==": "=", "<>": "!=", "!=": "!=", "<=": "<=", ">=": ">=", "=": "=", "<": "<", ">": ">"}
_HINTS = {
    "=>": "write >=", "=<": "write <=", "&&": 'write "and"', "||": 'write "or"',
    "!": 'write "not" to negate, or != for not equal', "&": 'write "and"', "|": 'write "or"',
    ".": "numbers are written 0.5; keys follow traits. or properties.",
    "（": "use the ASCII (", "）": "use the ASCII )", "，": "use the ASCII comma ,",
    "“": 'use the ASCII quote "', "”": 'use the ASCII quote "', "＝": "use the ASCII =",
}  # fmt: skip
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_VALUE_HINT = "write a number, a string in quotes, or a field such as traits.city"
_COND_HINT = 'write a condition such as traits.city = "上海"'


@dataclass(frozen=True)
class _Tok:
    kind: str  # word trait prop str num dur op ( ) , end
    text: str  # as written
    line: int
    col: int
    value: str = ""  # word lowercased, op normalised, string content, key, duration
    num: int | float = 0

    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the rule"
        return f"the string {self.text}" if self.kind == "str" else f'"{self.text}"'


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.toks: list[_Tok] = []

    def pos(self, i: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, i)
        return line, i - self.starts[line - 1] + 1

    def fail(self, i: int, message: str) -> NoReturn:
        line, col = self.pos(i)
        raise r.RuleError(message, line=line, column=col)

    def add(self, kind: str, start: int, end: int, value: str = "", num: int | float = 0) -> int:
        line, col = self.pos(start)
        self.toks.append(_Tok(kind, self.text[start:end], line, col, value, num))
        return end

    def run(self) -> list[_Tok]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c, two = text[i], text[i : i + 2]
            if c.isspace():
                i += 1
            elif c in "(),":
                i = self.add(c, i, i + 1, c)
            elif c in "\"'":
                end, s = self.string(i)
                i = self.add("str", i, end, s)
            elif m := _NUM.match(text, i):
                i = self.number(i, m.end())
            elif m := _WORD.match(text, i):
                word, end = m.group().lower(), m.end()
                if word in ("traits", "properties") and text.startswith(".", end):
                    end, key = self.key(end + 1, word)
                    i = self.add("trait" if word == "traits" else "prop", i, end, key)
                else:
                    i = self.add("word", i, end, word)
            elif two in _OPS:
                i = self.add("op", i, i + 2, _OPS[two])
            elif c in _OPS and two not in _HINTS:
                i = self.add("op", i, i + 1, _OPS[c])
            else:
                bad = two if two in _HINTS else c
                hint = _HINTS.get(bad) or (
                    "text needs quotes, and a trait key with such characters is written as in"
                    ' traits."城市"'
                    if c.isalpha()
                    else "it has no meaning in a rule"
                )
                self.fail(i, f'unexpected "{bad}"; {hint}')
        self.add("end", n, n)
        return self.toks

    def number(self, i: int, end: int) -> int:
        text = self.text
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):  # 90d
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            return self.add("dur", i, end, text[i:end].lower())
        raw = text[i:end]
        try:
            num = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            self.fail(i, f"the number {raw} is too long")
        if not math.isfinite(num):
            self.fail(i, f"the number {raw} is too large")
        return self.add("num", i, end, raw, num)

    def string(self, i: int) -> tuple[int, str]:
        text, q, j = self.text, self.text[i], i + 1
        out: list[str] = []
        while j < len(text) and text[j] != "\n":
            ch = text[j]
            if ch == q:
                return j + 1, "".join(out)
            if ch == "\\" and j + 1 < len(text) and text[j + 1] != "\n":
                if text[j + 1] not in _ESCAPES:
                    self.fail(j, f'unknown escape "\\{text[j + 1]}"; write \\\\ for a backslash')
                out.append(_ESCAPES[text[j + 1]])
                j += 2
            else:
                out.append(ch)
                j += 1
        line, col = self.pos(i)
        self.fail(
            i, f"the string that starts at line {line}, column {col} is not closed; end it with {q}"
        )

    def key(self, i: int, word: str) -> tuple[int, str]:
        if self.text[i : i + 1] in ("'", '"'):
            end, key = self.string(i)
            if not key:
                self.fail(i, f"the key after {word}. is empty")
            return end, key
        if m := _KEY.match(self.text, i):
            return m.end(), m.group()
        self.fail(
            i, f'expected a key after "{word}.", such as {word}.city, or {word}."城市" in quotes'
        )


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _Lexer(text).run()
        self.i = self.depth = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.value in words

    def fail(self, tok: _Tok, message: str) -> NoReturn:
        raise r.RuleError(message, line=tok.line, column=tok.col)

    def need(self, node: r.Node, tok: _Tok, want: jf.Want, *, set_ok: bool = False) -> r.Node:
        if problem := jf.misuse(node, want, set_ok=set_ok):
            self.fail(tok, problem)
        return node

    def close(self, opened: _Tok) -> bool:
        """Consume "," (True: more follows) or the ")" of ``opened`` (False)."""
        tok = self.next()
        if tok.kind in (",", ")"):
            return tok.kind == ","
        where = f"line {opened.line}, column {opened.col}"
        self.fail(tok, f'expected ")" to close the "(" at {where} but found {tok.shown()}')

    def expect_end(self, opened: _Tok) -> None:
        if self.close(opened):
            self.fail(self.toks[self.i - 1], 'unexpected ",": this takes no more arguments')

    def rule(self) -> tuple[r.Node, _Tok]:
        if self.peek().kind == "end":
            self.fail(self.peek(), f"the rule is empty; {_COND_HINT}")
        node, start = self.either("or")
        tok = self.peek()
        if tok.kind != "end":
            hint = 'join conditions with "and" or "or"'
            if tok.kind == ")":
                hint = 'it has no "(" to close'
            elif tok.kind == "op" or (tok.kind == "word" and tok.value == "contains"):
                hint = 'comparisons do not chain; join them with "and"'
            shown = tok.shown().removeprefix("the ")
            self.fail(tok, f"unexpected {shown} after a complete rule; {hint}")
        return node, start

    def either(self, word: str) -> tuple[r.Node, _Tok]:
        """``a or b ...`` (word "or") or ``a and b ...`` (word "and")."""
        node, start = self.either("and") if word == "or" else self.unary()
        if not self.at(word):
            return node, start
        items = [self.need(node, start, "condition")]
        while self.at(word):
            self.next()
            item, tok = self.either("and") if word == "or" else self.unary()
            items.append(self.need(item, tok, "condition"))
        return (r.Or(tuple(items)) if word == "or" else r.And(tuple(items))), start

    def unary(self) -> tuple[r.Node, _Tok]:
        self.depth += 1  # every nesting (not, parentheses, case) passes here
        if self.depth > jf.MAX_DEPTH:
            self.fail(self.peek(), f"the rule nests more than {jf.MAX_DEPTH} levels deep")
        if not self.at("not"):
            node, start = self.compare()
        else:
            start = self.next()
            item, tok = self.unary()
            node = r.Not(self.need(item, tok, "condition"))
        self.depth -= 1
        return node, start

    def compare(self) -> tuple[r.Node, _Tok]:
        left, start = self.operand("condition")
        tok = self.peek()
        if tok.kind == "op" or self.at("contains"):
            op = cast(r.Operator, self.next().value)
            right, rtok = self.operand()
            self.need(left, start, "value", set_ok=True)
            self.need(right, rtok, "value")
            if problem := jf.cmp_problem(op, left, right):
                self.fail(tok, problem)
            return r.Cmp(op, left, right), start
        if self.at("not", "in"):
            negate = self.in_word()
            self.need(left, start, "value", set_ok=True)
            return r.In(left, self.literals(), negate), start
        if self.at("is"):
            self.next()
            negate = self.skip("not")
            if not self.at("null"):
                self.fail(self.peek(), f'expected "null" after "is": {jf.describe(left)} is null')
            self.next()
            return r.IsNull(self.need(left, start, "value", set_ok=True), negate), start
        if self.at("between"):
            self.next()
            low, ltok = self.operand()
            if not self.skip("and"):
                self.fail(self.peek(), 'expected "and" between the bounds: x between 1 and 5')
            high, htok = self.operand()
            left = self.need(left, start, "value")
            return r.Between(
                left, self.need(low, ltok, "value"), self.need(high, htok, "value")
            ), start
        return left, start

    def skip(self, word: str) -> bool:
        """Consume the keyword ``word`` if it comes next."""
        return self.at(word) and self.next().value == word

    def in_word(self) -> bool:
        """Consume ``in`` or ``not in``; True for ``not in``."""
        negate = self.skip("not")
        if not self.skip("in"):
            self.fail(self.peek(), f'expected "in" after "not" but found {self.peek().shown()}')
        return negate

    def operand(self, role: str = "value") -> tuple[r.Node, _Tok]:
        tok, after = self.peek(), self.toks[self.i - 1] if self.i else None
        if tok.kind in ("str", "num") or self.at("true", "false", "null"):
            return r.Lit(self.literal(after)), tok
        if tok.kind == "trait":
            return r.Trait(self.next().value), tok
        if tok.kind == "(":
            self.next()
            node, _ = self.either("or")
            self.expect_end(tok)
            return node, tok
        if tok.kind == "word" and tok.value not in KEYWORDS - {"case"}:
            return self.named(tok), tok
        if tok.kind == "prop":
            self.fail(tok, f"{tok.text} is a field of events; use it inside an aggregate,"
                      f" as in count({tok.text} = \"x\")")  # fmt: skip
        shown = f' after "{after.text}"' if after else ""
        opens = after is None or after.kind == "(" or after.value in ("and", "or", "not", "when")
        if role == "condition" and opens:
            self.fail(tok, f"expected a condition{shown} but found {tok.shown()}; {_COND_HINT}")
        hint = "; a duration goes in ago(90d) or within 90d" if tok.kind == "dur" else ""
        self.fail(tok, f"expected a value{shown} but found {tok.shown()}; {_VALUE_HINT}{hint}")

    def named(self, tok: _Tok) -> r.Node:
        word = tok.value
        if word == "case":
            return self.case()
        if self.peek(1).kind != "(":
            if word in r.PROFILE_SETS:
                return r.ProfileSet(self.next().value)
            if word in FUNCTIONS or word == "traits":
                form = "traits.<key>" if word == "traits" else f"{word}(...)"
                self.fail(tok, f'"{tok.text}" needs more: write {form}')
            names = (*r.PROFILE_SETS, "true", "false", "null", "case", "not")
            t = tok.text
            self.fail(tok, f'unknown name "{t}"{jf.did_you_mean(word, names)}; to read a trait'
                      f' write traits.{t}, and put text in quotes: "{t}"')  # fmt: skip
        self.next()
        opened = self.next()
        if word in r.AGGREGATES:
            return self.agg(cast(r.Aggregate, word), tok, opened)
        if word == "now":
            self.expect_end(opened)
            return r.Ago(None)
        if word == "ago":
            node: r.Node = r.Ago(self.duration("ago"))
        elif word == "date":
            node = r.Lit(self.iso('date needs an ISO date in quotes: date("2024-06-01")'))
        elif word == "tag":
            node = r.TagRef(self.string('tag needs the key of a tag in quotes: tag("churned")'))
        elif word == "identifier":
            kind = self.string('identifier needs a type in quotes: identifier("openid")')
            scope = self.string("the scope is a string") if self.close(opened) else None
            if scope is None:
                return r.HasIdentifier(kind)
            node = r.HasIdentifier(kind, scope)
        else:
            dym = jf.did_you_mean(word, FUNCTIONS)
            self.fail(
                tok, f'unknown function "{tok.text}"{dym}; functions are {", ".join(FUNCTIONS)}'
            )
        self.expect_end(opened)
        return node

    def string(self, hint: str) -> str:
        tok = self.next()
        if tok.kind != "str" or not tok.value:
            self.fail(tok, f"{hint}; found {tok.shown()}")
        return tok.value

    def iso(self, hint: str) -> date:
        tok = self.peek()
        text = self.string(hint)
        try:
            return jf.iso_date(text)
        except ValueError:
            self.fail(
                tok, f'"{text}" is not an ISO date; write "2024-06-01" or "2024-06-01T12:00:00"'
            )

    def duration(self, where: str) -> str:
        tok = self.next()
        if tok.kind != "dur":
            self.fail(tok, f"{where} needs a duration such as 90d or 12h; found {tok.shown()}")
        try:
            r.duration_seconds(tok.value)
        except r.RuleError as e:
            self.fail(tok, e.message)
        return tok.value

    def literal(self, after: _Tok | None) -> r.Scalar:
        tok = self.next()
        if tok.kind == "str":
            return tok.value
        if tok.kind == "num":
            return tok.num
        if tok.kind == "word" and tok.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.value]
        shown = f'after "{after.text}" ' if after else ""
        self.fail(tok, f"expected a value {shown}but found {tok.shown()}; write a string in"
                  " quotes, a number, true, false or null")  # fmt: skip

    def literals(self) -> tuple[r.Scalar, ...]:
        opened = self.next()
        if opened.kind != "(":
            self.fail(opened, 'expected "(" after "in", as in traits.city in ("上海", "杭州")')
        if self.peek().kind == ")":
            self.fail(self.peek(), jf.EMPTY_IN)
        values = [self.literal(opened)]
        while self.close(opened):
            values.append(self.literal(self.toks[self.i - 1]))
        return tuple(values)

    def case(self) -> r.Case:
        start = self.next()
        whens = []
        while self.at("when"):
            self.next()
            cond, ctok = self.either("or")
            if not self.at("then"):
                self.fail(
                    self.peek(),
                    f'expected "then" after the condition but found {self.peek().shown()}',
                )
            self.next()
            value, vtok = self.either("or")
            whens.append((self.need(cond, ctok, "condition"), self.need(value, vtok, "value")))
        if not whens:
            self.fail(self.peek(), 'expected "when" after "case": case when C then V else V end')
        default = None
        if self.at("else"):
            self.next()
            default, dtok = self.either("or")
            self.need(default, dtok, "value")
        if not self.at("end"):
            where = f"line {start.line}, column {start.col}"
            self.fail(
                self.peek(),
                f'expected "end" to close the "case" at {where} but found {self.peek().shown()}',
            )
        self.next()
        return r.Case(tuple(whens), default)

    def field(self) -> r.EventField:
        tok = self.next()
        if tok.kind == "prop":
            return r.EventField("properties", tok.value)
        if tok.kind == "word" and tok.value in r.EVENT_FIELDS:
            return r.EventField(tok.value)
        if tok.kind == "word" and tok.value not in KEYWORDS:
            self.fail(tok, jf.field_problem(r.EventField(tok.text)) or "")
        where = (
            "traits are read outside aggregates" if tok.kind == "trait" else f"found {tok.shown()}"
        )
        self.fail(tok, f"expected an event field ({', '.join(r.EVENT_FIELDS)} or properties.<key>),"
                  f" within or between; {where}")  # fmt: skip

    def agg(self, fn: r.Aggregate, name: _Tok, opened: _Tok) -> r.Agg:
        of: r.EventField | None = None
        where: list[r.EventFilter] = []
        within: str | None = None
        window: list[date | None] = [None, None]  # since, until
        if fn in jf.NEEDS_FIELD:
            tok = self.peek()
            if tok.kind not in ("word", "prop") or self.at("within", "between", "since", "until"):
                self.fail(tok, jf.agg_problem(fn, None) or "")
            of = self.field()
            if self.peek().kind == "op" or self.at("in", "not", "contains"):
                example = f'{fn}({tok.text}, event = "Order Completed")'
                self.fail(self.peek(), f"{fn} takes its field first, then filters: {example}")
            more = self.close(opened)
        else:
            more = self.peek().kind != ")" or self.next().kind != ")"
        while more:
            tok = self.peek()
            if self.skip("within"):
                if within is not None:
                    self.fail(tok, "within is given twice")
                within = self.duration("within")
            elif self.at("between", "since", "until"):
                word = self.next().value
                ends = {"between": (0, 1), "since": (0,), "until": (1,)}[word]
                if any(window[e] is not None for e in ends):
                    self.fail(tok, "the time window is given twice")
                window[ends[0]] = self.window_date()
                if word == "between":
                    if not self.skip("and"):
                        self.fail(
                            self.peek(), 'expected "and": between "2024-01-01" and "2024-07-01"'
                        )
                    window[1] = self.window_date()
            else:
                where.append(self.filter(fn, of))
            more = self.close(opened)
        if problem := jf.window_problem(window[0], window[1]):
            self.fail(name, problem)
        return r.Agg(fn, of, tuple(where), within, window[0], window[1])

    def window_date(self) -> date:
        if self.at("date") and self.peek(1).kind == "(":
            self.next()
            opened = self.next()
            value = self.iso('date needs an ISO date in quotes: date("2024-06-01")')
            self.expect_end(opened)
            return value
        return self.iso(
            'a time window takes dates in quotes: between "2024-01-01" and "2024-07-01"'
        )

    def filter(self, fn: str, of: r.EventField | None) -> r.EventFilter:
        ftok = self.peek()
        field = self.field()
        tok = self.peek()
        if tok.kind == "op" or self.at("contains"):
            op = cast(r.Operator, self.next().value)
            return r.EventFilter(field, op, self.literal(tok))
        if self.at("in", "not"):
            return r.EventFilter(field, "not in" if self.in_word() else "in", self.literals())
        problem = None if of is not None else jf.agg_problem(fn, field)
        if problem and tok.kind in (",", ")"):
            self.fail(ftok, problem)
        self.fail(tok, f'expected an operator after {ftok.text}, as in {ftok.text} = "x" or'
                  f" {ftok.text} in (...); found {tok.shown()}")  # fmt: skip


def parse(text: str, *, want: jf.Want = "any") -> r.Node:
    """Parse the text form of a rule into its tree.

    Args:
        text: the rule, e.g. ``count(event = "Order Completed", within 90d) >= 2``.
        want: what the whole rule must be: ``"condition"``, ``"value"`` or ``"any"``.

    Raises:
        r.RuleError: with the line and column of the first problem and how to fix it.
    """
    if not isinstance(text, str):
        raise r.RuleError(f"a rule is text, not {type(text).__name__}")
    parser = _Parser(text)
    node, start = parser.rule()
    parser.need(node, start, want)
    jf.check(node, want=want)
    return node


def to_text(node: r.Node) -> str:
    """The canonical text of a rule tree; ``parse(to_text(n)) == n`` for a valid tree.

    Raises:
        r.RuleError: a literal has no text form (a NaN or infinite float).
    """
    return _text(node, 0)


_LEVEL = {r.Or: 1, r.And: 2, r.Not: 3, r.Cmp: 4, r.In: 4, r.IsNull: 4, r.Between: 4}


def _text(n: r.Node, least: int) -> str:
    """Text of ``n`` in a place that takes precedence ``least`` or higher without parentheses."""
    if _LEVEL.get(type(n), 5) < least:
        return f"({_text(n, 0)})"
    if isinstance(n, (r.Or, r.And)):
        sep, level = (" or ", 2) if isinstance(n, r.Or) else (" and ", 3)
        return sep.join(_text(i, level) for i in n.items)
    if isinstance(n, r.Not):
        return f"not {_text(n.item, 3)}"
    if isinstance(n, r.Cmp):
        return f"{_text(n.left, 5)} {n.op} {_text(n.right, 5)}"
    if isinstance(n, r.In):
        values = ", ".join(_scalar(v) for v in n.values)
        return f"{_text(n.left, 5)} {'not in' if n.negate else 'in'} ({values})"
    if isinstance(n, r.IsNull):
        return f"{_text(n.left, 5)} is {'not ' if n.negate else ''}null"
    if isinstance(n, r.Between):
        return f"{_text(n.left, 5)} between {_text(n.low, 5)} and {_text(n.high, 5)}"
    if isinstance(n, r.Lit):
        v = n.value
        return f"date({_quote(v.isoformat())})" if isinstance(v, date) else _scalar(v)
    if isinstance(n, r.Trait):
        return f"traits.{_key(n.key)}"
    if isinstance(n, r.ProfileSet):
        return n.name
    if isinstance(n, r.TagRef):
        return f"tag({_quote(n.key)})"
    if isinstance(n, r.HasIdentifier):
        scope = "" if n.scope is None else f", {_quote(n.scope)}"
        return f"identifier({_quote(n.type)}{scope})"
    if isinstance(n, r.Ago):
        return "now()" if n.duration is None else f"ago({n.duration})"
    if isinstance(n, r.Case):
        whens = " ".join(f"when {_text(c, 0)} then {_text(v, 0)}" for c, v in n.whens)
        default = "" if n.default is None else f" else {_text(n.default, 0)}"
        return f"case {whens}{default} end"
    return _agg(n)


def _agg(n: r.Agg) -> str:
    args = [] if n.of is None else [_field(n.of)]
    for f in n.where:
        value = (
            f"({', '.join(map(_scalar, f.value))})"
            if isinstance(f.value, tuple)
            else _scalar(f.value)
        )
        args.append(f"{_field(f.field)} {f.op} {value}")
    if n.within is not None:
        args.append(f"within {n.within}")
    if n.since is not None and n.until is not None:
        args.append(f"between {_quote(n.since.isoformat())} and {_quote(n.until.isoformat())}")
    elif n.since is not None or n.until is not None:
        word, d = ("since", n.since) if n.since is not None else ("until", n.until)
        args.append(f"{word} {_quote(cast(date, d).isoformat())}")
    return f"{n.fn}({', '.join(args)})"


def _field(f: r.EventField) -> str:
    return f"properties.{_key(f.property or '')}" if f.name == "properties" else f.name


def _key(key: str) -> str:
    return key if _KEY.fullmatch(key) else _quote(key)


def _quote(s: str) -> str:
    for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        s = s.replace(a, b)
    return f'"{s}"'


def _scalar(v: r.Scalar) -> str:
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, float) and not math.isfinite(v):
        raise r.RuleError(f"{v} has no text form; a number must be finite")
    return _quote(v) if isinstance(v, str) else repr(v)
