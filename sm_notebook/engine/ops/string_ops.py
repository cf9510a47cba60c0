"""String kernels (host only): strings are numpy object arrays of ``bytes``, as in TensorFlow.

Regular expressions run on RE2 (the ``google-re2`` package), TensorFlow's own
engine: the same syntax and matches, in time linear in the subject.
"""
from __future__ import annotations

import base64
import binascii
import math
import struct

import numpy as np
import re2

from ...errors import SavedModelError
from ...format.farmhash import fingerprint64
from .registry import kernel

_WHITESPACE = b" \t\n\v\f\r"


def _strings(x) -> np.ndarray:
    """An object array of bytes (accepts str/bytes numpy arrays too)."""
    x = np.asarray(x)
    if x.dtype.kind == "U":
        out = np.empty(x.shape, object)
        out.reshape(-1)[:] = [s.encode() for s in x.reshape(-1)]
        return out
    if x.dtype.kind == "S":
        return x.astype(object)
    return x


def _map(fn, x, dtype=object) -> np.ndarray:
    """Apply ``fn`` to every element of an object array, keeping the shape."""
    x = _strings(x)
    flat = [fn(v) for v in x.reshape(-1)]
    out = np.empty(len(flat), dtype=dtype)
    out[:] = flat if dtype == object else np.asarray(flat, dtype=dtype)
    return out.reshape(x.shape)


def _scalar_string(x, op, what) -> bytes:
    x = _strings(x)
    if x.size != 1:
        raise SavedModelError(f"{op}: {what} must be a scalar string, got shape {x.shape}.")
    value = x.reshape(-1)[0]
    return value.encode() if isinstance(value, str) else bytes(value)


def _attr_bytes(value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value or b"")


# --- joining, case, stripping, length -------------------------------------------------------


@kernel("StringJoin")
def string_join(ctx, inputs, attrs):
    parts = [_strings(x) for x in inputs]
    shapes = {p.shape for p in parts if p.ndim}
    if len(shapes) > 1:
        raise SavedModelError(f"StringJoin: input shapes do not match: {sorted(shapes)}.")
    shape = shapes.pop() if shapes else ()
    sep = _attr_bytes(attrs.get("separator", b""))
    count = math.prod(shape)
    if count:  # scalars repeat for every element: bound the joined bytes before joining
        longest = sum(max(map(len, p.reshape(-1)), default=0) for p in parts)
        ctx.check_alloc((count, longest + len(sep) * max(len(parts) - 1, 0)), np.uint8,
                        "StringJoin")
    columns = [np.broadcast_to(p, shape).reshape(-1) for p in parts]
    joined = [sep.join(row) for row in zip(*columns)] if columns else []
    out = np.empty(len(joined), object)
    out[:] = joined
    return [out.reshape(shape)]


def _case_kernel(op, ascii_fn, unicode_fn):
    @kernel(op)
    def convert(ctx, inputs, attrs):
        encoding = attrs.get("encoding", "")
        if encoding in ("", b""):
            return [_map(ascii_fn, inputs[0])]
        if str(encoding).lower() not in ("utf-8", "utf8"):
            raise SavedModelError(f"{op}: encoding {encoding!r} is not supported (use '' or "
                                  "'utf-8').")
        # ICU reads the input as a NUL-terminated string, as TensorFlow hands it over
        return [_map(lambda s: unicode_fn(s.split(b"\0", 1)[0].decode("utf-8", "replace"))
                     .encode("utf-8"), inputs[0])]
    return convert


_case_kernel("StringUpper", bytes.upper, str.upper)
_case_kernel("StringLower", bytes.lower, str.lower)


@kernel("StringStrip")
def string_strip(ctx, inputs, attrs):
    return [_map(lambda s: s.strip(_WHITESPACE), inputs[0])]


def _utf8_char_count(s: bytes) -> int:
    return sum(1 for b in s if b & 0xC0 != 0x80)


def _check_unit(unit, op):
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise SavedModelError(f"{op}: unit must be BYTE or UTF8_CHAR, got {unit!r}.")
    return unit


@kernel("StringLength")
def string_length(ctx, inputs, attrs):
    unit = _check_unit(attrs.get("unit", "BYTE"), "StringLength")
    count = len if unit == "BYTE" else _utf8_char_count
    return [_map(count, inputs[0], np.int32)]


# --- substrings and splitting ---------------------------------------------------------------


def _utf8_offsets(s: bytes) -> list[int]:
    """Byte offset of every UTF-8 character start, plus len(s)."""
    return [i for i, b in enumerate(s) if b & 0xC0 != 0x80] + [len(s)]


@kernel("Substr")
def substr(ctx, inputs, attrs):
    x, pos_t, len_t = _strings(inputs[0]), np.asarray(inputs[1]), np.asarray(inputs[2])
    unit = _check_unit(attrs.get("unit", "BYTE"), "Substr")
    if pos_t.shape != len_t.shape:
        raise SavedModelError(f"Substr: pos and len should have the same shape, got {pos_t.shape} "
                              f"and {len_t.shape}.")
    try:
        xs, ps, ls = np.broadcast_arrays(x, pos_t, len_t)
    except ValueError:
        raise SavedModelError(f"Substr: incompatible shapes: input {x.shape} vs. pos "
                              f"{pos_t.shape}.") from None
    out = np.empty(xs.size, object)
    for i, (s, p, n) in enumerate(zip(xs.reshape(-1), ps.reshape(-1), ls.reshape(-1))):
        p, n = int(p), int(n)
        offsets = _utf8_offsets(s) if unit == "UTF8_CHAR" else None
        size = len(offsets) - 1 if offsets is not None else len(s)
        if abs(p) > size:
            raise SavedModelError(f"Substr: pos {p} out of range for string {s!r} at index {i}.")
        if p < 0:
            p += size
        if n < 0:  # bytes: to the end (string_view::substr); UTF-8: nothing
            n = size if offsets is None else 0
        end = min(p + n, size)
        out[i] = s[p:end] if offsets is None else s[offsets[p]:offsets[end]]
    return [out.reshape(xs.shape)]


def _split_whitespace(s: bytes, maxsplit: int) -> list[bytes]:
    """TensorFlow's whitespace split: like bytes.split(), but a split limit keeps the remainder
    even when empty, and maxsplit=0 returns the string untouched."""
    if maxsplit == 0:
        return [s]
    tokens, rest = [], s.lstrip(_WHITESPACE)
    while rest and (maxsplit < 0 or len(tokens) < maxsplit):
        end = next((i for i, b in enumerate(rest) if b in _WHITESPACE), len(rest))
        tokens.append(rest[:end])
        rest = rest[end:].lstrip(_WHITESPACE)
    if 0 < maxsplit == len(tokens):
        tokens.append(rest)
    return tokens


@kernel("StringSplitV2")
def string_split_v2(ctx, inputs, attrs):
    x = _strings(inputs[0])
    if x.ndim != 1:
        raise SavedModelError(f"StringSplitV2: input must be a vector, got shape {x.shape}.")
    sep = _scalar_string(inputs[1], "StringSplitV2", "sep")
    maxsplit = int(attrs.get("maxsplit", -1))
    indices, values, widest = [], [], 0
    for row, s in enumerate(x):
        tokens = s.split(sep, maxsplit) if sep else _split_whitespace(s, maxsplit)
        widest = max(widest, len(tokens))
        indices.extend((row, col) for col in range(len(tokens)))
        values.extend(tokens)
    out_values = np.empty(len(values), object)
    out_values[:] = values
    return [np.asarray(indices, np.int64).reshape(len(values), 2), out_values,
            np.asarray([x.shape[0], widest], np.int64)]


@kernel("ReduceJoin")
def reduce_join(ctx, inputs, attrs):
    x = _strings(inputs[0])
    axes = [int(a) for a in np.asarray(inputs[1]).reshape(-1)]
    sep = _attr_bytes(attrs.get("separator", b""))
    keep_dims = bool(attrs.get("keep_dims", False))
    rank = x.ndim
    canonical = []
    for a in axes:
        if not -rank <= a < rank:
            raise SavedModelError(f"ReduceJoin: invalid reduction dimension {a} for input with "
                                  f"{rank} dimension(s).")
        a = a + rank if a < 0 else a
        if a in canonical:
            raise SavedModelError(f"ReduceJoin: duplicate reduction dimension {a}.")
        canonical.append(a)
    if not canonical:
        return [x]
    kept = [d for d in range(rank) if d not in canonical]
    # TensorFlow walks the reduced dims with the first listed one varying fastest
    moved = np.transpose(x, kept + canonical[::-1])
    kept_shape = tuple(x.shape[d] for d in kept)
    rows = moved.reshape(kept_shape + (-1,)) if moved.size else np.empty(kept_shape + (0,), object)
    out = np.empty(rows.shape[:-1], object)
    for idx in np.ndindex(out.shape):
        out[idx] = sep.join(rows[idx])
    if keep_dims:
        out = out.reshape(tuple(1 if d in canonical else x.shape[d] for d in range(rank)))
    return [out]


# --- regular expressions --------------------------------------------------------------------

#: RE2 as TensorFlow builds it (``RE2(pattern)``: UTF-8, longest_match off), without its
#: error logging to stderr.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE_CACHE: dict = {}  # pattern bytes -> compiled RE2


def _compile(pattern, op):
    """``pattern`` compiled by RE2, TensorFlow's engine: its syntax, and time linear in the
    subject whatever the pattern. Patterns RE2 rejects (backreferences, lookaround,
    ``\\Z``...) fail as in TensorFlow."""
    pattern = pattern.encode("utf-8") if isinstance(pattern, str) else bytes(pattern)
    regex = _RE_CACHE.get(pattern)
    if regex is None:
        try:
            regex = re2.compile(pattern, _RE2_OPTIONS)
        except re2.error as exc:
            raise SavedModelError(
                f"{op}: invalid pattern {pattern.decode('utf-8', 'backslashreplace')!r}, error: "
                f"{exc}. TensorFlow's regex engine (RE2) rejects it too; RE2 has no "
                "backreferences or lookaround and spells end of text \\z.") from None
        if len(_RE_CACHE) > 1024:
            _RE_CACHE.clear()
        _RE_CACHE[pattern] = regex
    return regex


def _rewriter(rewrite: bytes):
    """RE2 rewrite (``\\0``-``\\9`` groups, ``\\\\`` backslash) as (function of a match,
    highest group used, whether it is valid). RE2 stops at an invalid escape."""
    pieces, i, valid, top = [], 0, True, 0
    while i < len(rewrite):
        ch = rewrite[i:i + 1]
        if ch == b"\\":
            nxt = rewrite[i + 1:i + 2]
            if nxt and nxt in b"0123456789":
                pieces.append(int(nxt))
            elif nxt == b"\\":
                pieces.append(b"\\")
            else:
                valid = False
                break
            i += 2
        else:
            pieces.append(ch)
            i += 1
    k = 0
    while k < len(rewrite):  # every escaped digit counts, as in RE2's MaxSubmatch
        if rewrite[k:k + 1] == b"\\":
            if rewrite[k + 1:k + 2].isdigit():
                top = max(top, int(rewrite[k + 1:k + 2]))
            k += 1
        k += 1

    def rewrite_match(m):
        return b"".join(p if isinstance(p, bytes) else (m.group(p) or b"") for p in pieces)
    return rewrite_match, top, valid


def _utf8_step(s: bytes, pos: int) -> int:
    """Bytes of the character at ``pos`` as RE2 steps over it: one UTF-8 character, or
    one byte where the text is not valid UTF-8."""
    lead = s[pos] if pos < len(s) else 0
    n = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 1
    if n > 1:
        try:
            s[pos:pos + n].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return 1
    return n


def _replace(regex, s: bytes, rewrite, replace_global: bool) -> bytes:
    """RE2's Replace / GlobalReplace: no empty match right after the previous match."""
    out, pos, last_end = [], 0, -1
    while pos <= len(s):
        m = regex.search(s, pos)
        if m is None:
            break
        if m.start() == m.end() and m.start() == last_end:
            step = _utf8_step(s, pos)
            out.append(s[pos:pos + step])
            pos += step
            continue
        out.append(s[pos:m.start()])
        out.append(rewrite(m))
        pos = last_end = m.end()
        if not replace_global:
            break
    out.append(s[pos:])
    return b"".join(out)


def _regex_replace(x, pattern, rewrite, replace_global, op):
    regex = _compile(pattern, op)
    rewrite_fn, top_group, valid = _rewriter(rewrite)
    if top_group > regex.groups or (not valid and not replace_global):
        return _strings(x)  # RE2 refuses the rewrite and leaves every string unchanged
    return _map(lambda s: _replace(regex, s, rewrite_fn, replace_global), x)


@kernel("RegexReplace")
def regex_replace(ctx, inputs, attrs):
    op = "RegexReplace"
    return [_regex_replace(inputs[0], _scalar_string(inputs[1], op, "pattern"),
                           _scalar_string(inputs[2], op, "rewrite"),
                           bool(attrs.get("replace_global", True)), op)]


@kernel("StaticRegexReplace")
def static_regex_replace(ctx, inputs, attrs):
    return [_regex_replace(inputs[0], _attr_bytes(attrs["pattern"]), _attr_bytes(attrs["rewrite"]),
                           bool(attrs.get("replace_global", True)), "StaticRegexReplace")]


def _full_match(x, pattern, op):
    regex = _compile(pattern, op)
    return _map(lambda s: regex.fullmatch(s) is not None, x, np.bool_)


@kernel("RegexFullMatch")
def regex_full_match(ctx, inputs, attrs):
    pattern = _scalar_string(inputs[1], "RegexFullMatch", "pattern")
    return [_full_match(inputs[0], pattern, "RegexFullMatch")]


@kernel("StaticRegexFullMatch")
def static_regex_full_match(ctx, inputs, attrs):
    return [_full_match(inputs[0], _attr_bytes(attrs["pattern"]), "StaticRegexFullMatch")]


# --- numbers <-> strings --------------------------------------------------------------------

_AS_STRING_FILLS = ("", " ", "+", "-", "0", "#")


def _c_format(fmt: str, value) -> str:
    """printf-style formatting; non-finite values spelled as glibc does ("-nan", no zero fill)."""
    if isinstance(value, float) and not math.isfinite(value):
        flags, width = re2.match(r"%([-+ #0]*)(\d*)", fmt).groups()
        negative = math.copysign(1.0, value) < 0
        text = ("-" if negative else "+" if "+" in flags else " " if " " in flags else "")
        text += "nan" if math.isnan(value) else "inf"
        width = int(width) if width else 0
        return text.ljust(width) if "-" in flags else text.rjust(width)
    return fmt % value


@kernel("AsString")
def as_string(ctx, inputs, attrs):
    x = np.asarray(inputs[0])
    precision = int(attrs.get("precision", -1))
    scientific = bool(attrs.get("scientific", False))
    shortest = bool(attrs.get("shortest", False))
    width = int(attrs.get("width", -1))
    fill = attrs.get("fill", "")
    fill = fill.decode() if isinstance(fill, bytes) else fill
    kind = x.dtype.kind
    if len(fill) > 1:
        raise SavedModelError("AsString: fill string must be one or fewer characters.")
    if fill not in _AS_STRING_FILLS:
        raise SavedModelError(f"AsString: fill argument not supported: {fill!r}.")
    if scientific and shortest:
        raise SavedModelError("AsString: cannot select both scientific and shortest notation.")
    if width > 0:
        ctx.check_alloc((x.size, width), np.uint8, "AsString")
    if kind in "OSU":  # %s: only the width and left-justification apply
        if width < 0:
            return [_strings(x)]
        return [_map(lambda v: v.ljust(width) if fill == "-" else v.rjust(width), x)]
    is_float = kind in "fc" or x.dtype.name == "bfloat16"
    if precision > -1 and not is_float:
        raise SavedModelError(f"AsString: precision not supported for datatype {x.dtype.name}.")
    if (scientific or shortest) and not is_float:
        raise SavedModelError(f"AsString: scientific and shortest format not supported for "
                              f"datatype {x.dtype.name}.")
    spec = "%" + (f"{fill}{width}" if width > -1 else "")
    spec += f".{precision}" if precision > -1 else ""
    if kind == "b":
        return [_map(lambda v: b"true" if v else b"false", x.astype(object))]
    if kind in "iu":
        if kind == "u" and fill in "+ ":  # %u has no sign
            spec = spec.replace(fill, "", 1)
        fmt = spec + "d"
        return [_map(lambda v: (fmt % int(v)).encode(), x.astype(object))]
    fmt = spec + ("g" if shortest else "e" if scientific else "f")
    if kind == "c":
        return [_map(lambda v: f"({_c_format(fmt, v.real)},{_c_format(fmt, v.imag)})".encode(),
                     x.astype(np.complex128).astype(object))]
    return [_map(lambda v: _c_format(fmt, float(v)).encode(), x.astype(np.float64).astype(object))]


_INT_RE = re2.compile(rb"[+-]?[0-9]+")
_FLOAT_RE = re2.compile(rb"(?i)[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?"
                        rb"|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
                        rb"|inf(?:inity)?|nan)")


def _parse_number(s: bytes, dtype: np.dtype):
    text = s.strip(_WHITESPACE)
    if dtype.kind == "i":
        if not _INT_RE.fullmatch(text):
            raise ValueError
        value = int(text)
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise ValueError
        return value
    if not _FLOAT_RE.fullmatch(text):
        raise ValueError
    sign = -1.0 if text[:1] == b"-" else 1.0
    body = text.lstrip(b"+-")
    if body[:2].lower() == b"0x":
        return sign * float.fromhex(body.decode())
    if body.lower() == b"nan":
        return math.nan
    return float(text)


@kernel("StringToNumber")
def string_to_number(ctx, inputs, attrs):
    dtype = np.dtype(attrs.get("out_type", np.float32))
    if dtype not in (np.float32, np.float64, np.int32, np.int64):
        raise SavedModelError(f"StringToNumber: out_type {dtype.name} is not supported.")

    def parse(s):
        try:
            return _parse_number(s, dtype)
        except (ValueError, OverflowError):
            raise SavedModelError(f"StringToNumber could not correctly convert string: {s!r} "
                                  f"to {dtype.name}.") from None

    with np.errstate(over="ignore"):
        return [_map(parse, inputs[0], dtype)]


# --- hashing and base64 ---------------------------------------------------------------------


def _num_buckets(attrs, op):
    buckets = int(attrs["num_buckets"])
    if buckets < 1:
        raise SavedModelError(f"{op}: num_buckets must be positive, got {buckets}.")
    return buckets


@kernel("StringToHashBucketFast")
def string_to_hash_bucket_fast(ctx, inputs, attrs):
    buckets = _num_buckets(attrs, "StringToHashBucketFast")
    return [_map(lambda s: fingerprint64(s) % buckets, inputs[0], np.int64)]


_MASK64 = 0xFFFFFFFFFFFFFFFF


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK64


def siphash24(key0: int, key1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` with the 128-bit key (key0, key1)."""
    v0, v1 = key0 ^ 0x736F6D6570736575, key1 ^ 0x646F72616E646F6D
    v2, v3 = key0 ^ 0x6C7967656E657261, key1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _MASK64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    tail = len(data) % 8
    for (m,) in struct.iter_unpack("<Q", data[:len(data) - tail]):
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (len(data) & 0xFF) << 56 | int.from_bytes(data[len(data) - tail:], "little")
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


@kernel("StringToHashBucketStrong")
def string_to_hash_bucket_strong(ctx, inputs, attrs):
    buckets = _num_buckets(attrs, "StringToHashBucketStrong")
    key = [int(k) & _MASK64 for k in attrs.get("key", [])]
    if len(key) != 2:
        raise SavedModelError("StringToHashBucketStrong: key must have 2 elements, got "
                              f"{len(key)}.")
    return [_map(lambda s: siphash24(key[0], key[1], s) % buckets, inputs[0], np.int64)]


_B64_RE = re2.compile(rb"[A-Za-z0-9_-]*")


def _decode_base64(s: bytes) -> bytes:
    body = s
    if len(s) % 4 == 0 and s.endswith(b"="):
        body = s[:-2] if s.endswith(b"==") else s[:-1]
    if not _B64_RE.fullmatch(body):
        raise SavedModelError(f"DecodeBase64: invalid character found in base64: {s[:40]!r}.")
    if len(body) % 4 == 1:
        raise SavedModelError("DecodeBase64: base64 string length cannot be 1 modulo 4: "
                              f"{s[:40]!r}.")
    try:
        return base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SavedModelError(f"DecodeBase64: invalid base64 {s[:40]!r}: {exc}.") from None


@kernel("DecodeBase64")
def decode_base64(ctx, inputs, attrs):
    return [_map(_decode_base64, inputs[0])]


@kernel("EncodeBase64")
def encode_base64(ctx, inputs, attrs):
    pad = bool(attrs.get("pad", False))
    return [_map(lambda s: base64.urlsafe_b64encode(s) if pad else
                 base64.urlsafe_b64encode(s).rstrip(b"="), inputs[0])]

