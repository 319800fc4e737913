"""JavaScript's semantics for the values of JSON Logic, as json-logic-js 2.0.5 meets them in a browser:
conversions (ToNumber, ToString, parseFloat, truthiness), loose and strict equality, relational comparison,
``Number#toString``, ``String#substr`` over UTF-16 code units, and the arithmetic of the operators we allow.
Pure functions over JSON values (None, bool, int/float, str, list, dict) and ``UNDEFINED``."""

from __future__ import annotations

import math
import re


class LogicError(Exception):
    """An expression that cannot be evaluated: an operator we do not allow, too deep, too much work."""



class _Undefined:
    __slots__ = ()

    def __repr__(self):
        return "undefined"


UNDEFINED = _Undefined()


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def js_number_str(x: float | int) -> str:
    """ECMAScript Number::toString(10)."""
    if isinstance(x, int):
        if abs(x) < 10**21:
            return str(x)
        x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # the shortest digits that round-trip, as JavaScript picks them; only the layout differs
    mant, _, e = r.partition("e")
    e10 = int(e) if e else 0
    int_part, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    s = (int_part + frac).lstrip("0")
    lead_zeros = len(int_part + frac) - len((int_part + frac).lstrip("0"))
    n = len(int_part) + e10 - lead_zeros  # decimal point position relative to the digits s
    s = s.rstrip("0") or "0"
    k = len(s)
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e_out = n - 1
        es = f"e+{e_out}" if e_out >= 0 else f"e-{-e_out}"
        out = (s[0] + ("." + s[1:] if k > 1 else "")) + es
    return sign + out


def to_primitive(v):
    if isinstance(v, list):
        return ",".join("" if x is None or x is UNDEFINED else to_string(x) for x in v)
    if isinstance(v, dict):
        return "[object Object]"
    return v


def to_string(v) -> str:
    v = to_primitive(v)
    if v is None:
        return "null"
    if v is UNDEFINED:
        return "undefined"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if is_number(v):
        return js_number_str(v)
    return v


_WS = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
      "\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_RADIX = re.compile(r"0([xXoObB])([0-9a-fA-F]+)")
_PARSE_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_PARSE_FLOAT_NO_EXP = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def _float(text: str) -> float:
    if text.lstrip("+-") == "Infinity":
        return -math.inf if text.startswith("-") else math.inf
    return float(text)


def to_number(v) -> float | int:
    v = to_primitive(v)
    if v is None or v is False:
        return 0
    if v is True:
        return 1
    if v is UNDEFINED:
        return math.nan
    if is_number(v):
        return v
    s = v.strip(_WS)
    if s == "":
        return 0
    if _DECIMAL.fullmatch(s):
        return _float(s)
    m = _RADIX.fullmatch(s)
    if m:
        base = {"x": 16, "o": 8, "b": 2}[m.group(1).lower()]
        try:
            return int(m.group(2), base)
        except ValueError:
            return math.nan
    return math.nan


def parse_float(v) -> float:
    """JavaScript's parseFloat: the longest decimal prefix of String(v), else NaN."""
    s = to_string(v).lstrip(_WS)
    m = _PARSE_FLOAT.match(s)
    if not m:
        return math.nan
    text = m.group(0)
    try:
        return _float(text)
    except (ValueError, OverflowError):  # "1e" matched without its digits cannot happen: the regex needs them
        m2 = _PARSE_FLOAT_NO_EXP.match(s)
        return float(m2.group(0)) if m2 else math.nan


def truthy(v) -> bool:
    if isinstance(v, list):
        return len(v) > 0
    if v is None or v is UNDEFINED or v is False:
        return False
    if is_number(v):
        return v != 0 and not (isinstance(v, float) and math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def strict_equal(a, b) -> bool:
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return a is b
    if type(a) is not type(b):
        return False
    return a == b


def loose_equal(a, b) -> bool:
    if (a is None or a is UNDEFINED) and (b is None or b is UNDEFINED):
        return True
    if a is None or a is UNDEFINED or b is None or b is UNDEFINED:
        return False
    if isinstance(a, (list, dict)) and isinstance(b, (list, dict)):
        return a is b
    if isinstance(a, bool):
        return loose_equal(int(a), b)
    if isinstance(b, bool):
        return loose_equal(a, int(b))
    if isinstance(a, (list, dict)):
        return loose_equal(to_primitive(a), b)
    if isinstance(b, (list, dict)):
        return loose_equal(a, to_primitive(b))
    if is_number(a) and isinstance(b, str):
        return a == to_number(b)
    if isinstance(a, str) and is_number(b):
        return to_number(a) == b
    return strict_equal(a, b)


def less(a, b, or_equal: bool) -> bool:
    a, b = to_primitive(a), to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        ua, ub = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
        return ua <= ub if or_equal else ua < ub
    x, y = to_number(a), to_number(b)
    return x <= y if or_equal else x < y  # NaN compares false both ways, as in JavaScript


def _to_integer(v) -> int | float:
    n = to_number(v)
    if isinstance(n, float):
        if math.isnan(n):
            return 0
        if math.isinf(n):
            return n
        return int(n)
    return n


def _units(s: str) -> list[int]:
    b = s.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(b[i:i + 2], "little") for i in range(0, len(b), 2)]


def _from_units(units: list[int]) -> str:
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "surrogatepass")


def substr(source, start=UNDEFINED, length=UNDEFINED) -> str:
    units = _units(to_string(source))

    def js_substr(u, st, ln):
        n = len(u)
        st = _to_integer(st)
        if st == -math.inf:
            st = 0
        elif st < 0:
            st = max(n + st, 0)
        st = min(st, n) if st != math.inf else n
        ln = n - st if ln is UNDEFINED else _to_integer(ln)
        ln = min(max(ln, 0), n - st) if ln != math.inf else n - st
        return u[int(st):int(st + ln)]

    if length is not UNDEFINED and to_number(length) < 0:
        temp = js_substr(units, start, UNDEFINED)
        end = len(temp) + _to_integer(length)
        return _from_units(temp[:max(int(end), 0)] if end != -math.inf else [])
    return _from_units(js_substr(units, start, length))


def _get(data, key):
    """``data[key]`` as JavaScript reads it for the JSON values we have."""
    if isinstance(data, dict):
        return data.get(key, UNDEFINED)
    if isinstance(data, (list, str)):
        if key == "length":
            return len(data) if isinstance(data, list) else len(_units(data))
        if key.isdigit() and (key == "0" or not key.startswith("0")):
            i = int(key)
            if isinstance(data, list):
                return data[i] if i < len(data) else UNDEFINED
            units = _units(data)
            return _from_units([units[i]]) if i < len(units) else UNDEFINED
    return UNDEFINED


def var(data, a=UNDEFINED, b=UNDEFINED):
    not_found = None if b is UNDEFINED else b
    if a is UNDEFINED or a == "" or a is None:
        return data
    for part in to_string(a).split("."):
        if data is None or data is UNDEFINED:
            return not_found
        data = _get(data, part)
        if data is UNDEFINED:
            return not_found
    return data


def min_max(fn, args):
    nums = [to_number(a) for a in args]
    if any(isinstance(n, float) and math.isnan(n) for n in nums):
        return math.nan
    if not nums:
        return math.inf if fn is min else -math.inf
    return fn(nums)


def divide(a, b):
    x, y = to_number(a), to_number(b)
    if isinstance(x, float) and math.isnan(x) or isinstance(y, float) and math.isnan(y):
        return math.nan
    if y == 0:
        if x == 0:
            return math.nan
        negative = (x < 0) != (math.copysign(1, y) < 0)
        return -math.inf if negative else math.inf
    if math.isinf(x) and math.isinf(y):
        return math.nan
    return x / y


def remainder(a, b):
    x, y = to_number(a), to_number(b)
    if (isinstance(x, float) and (math.isnan(x) or math.isinf(x))) or y == 0 or \
            (isinstance(y, float) and math.isnan(y)):
        return math.nan
    if isinstance(y, float) and math.isinf(y):
        return x
    return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else int(math.fmod(x, y))


def _arith(fn, x, y):
    try:
        r = fn(x, y)
    except OverflowError:
        return math.inf
    return r


def plus(args):
    total = 0
    for a in args:
        total = _arith(lambda x, y: x + y, parse_float(total), parse_float(a))
    return total


def times(args):
    if not args:
        raise LogicError("'*' needs at least one argument")
    total = args[0]
    for a in args[1:]:
        total = _arith(lambda x, y: x * y, parse_float(total), parse_float(a))
    return total


def minus(a=UNDEFINED, b=UNDEFINED):
    if b is UNDEFINED:
        return -to_number(a)
    return _arith(lambda x, y: x - y, to_number(a), to_number(b))


def js_in(a=UNDEFINED, b=UNDEFINED):
    if not truthy(b) and not isinstance(b, list):
        return False
    if isinstance(b, str):
        return to_string(a) in b
    if isinstance(b, list):
        return any(strict_equal(a, x) for x in b)
    return False


def cat(*args):
    return "".join(to_string([a]) if a is None else to_string(a) for a in args)

