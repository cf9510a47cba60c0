"""Serialize protos byte-for-byte as TensorFlow's C++ deterministic serialization does.

Python's upb runtime orders integer map keys differently from C++ (it put key 10
before key 2 in FunctionDef.arg_attr), so hashes TensorFlow takes over C++
serializations (fingerprint.pb) cannot be reproduced with SerializeToString.
Here messages holding integer-keyed maps are re-encoded field by field, with
those maps sorted numerically; everything else is upb's own deterministic output.
"""
from __future__ import annotations

from functools import lru_cache

from google.protobuf.descriptor import FieldDescriptor

from .sstable import decode_varint, encode_varint

_INT_KEY_TYPES = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
                  FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
                  FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64,
                  FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64}


def _is_map(field) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry)


@lru_cache(maxsize=None)
def _needs_reencoding(descriptor) -> bool:
    """True when the message type, or one nested in it, has a map with integer keys."""
    return _walk(descriptor, set())


def _walk(descriptor, seen) -> bool:
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if _is_map(field) and field.message_type.fields_by_name["key"].type in _INT_KEY_TYPES:
            return True
        if _walk(field.message_type, seen):
            return True
    return False


def _length_delimited(number: int, payload: bytes) -> bytes:
    return encode_varint((number << 3) | 2) + encode_varint(len(payload)) + payload


def cpp_deterministic_bytes(message) -> bytes:
    """``message`` serialized as C++ SerializeToStringDeterministic would."""
    descriptor = message.DESCRIPTOR
    if not _needs_reencoding(descriptor):
        return message.SerializeToString(deterministic=True)
    out = bytearray()
    for field in sorted(descriptor.fields, key=lambda f: f.number):
        value = getattr(message, field.name)
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            keys = sorted(value.keys()) if key_field.type in _INT_KEY_TYPES else sorted(
                value.keys(), key=lambda k: k.encode() if isinstance(k, str) else k)
            for key in keys:
                entry = _map_entry(message, field, key, value[key])
                out += _length_delimited(field.number, entry)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.is_repeated:
            for item in value:
                out += _length_delimited(field.number, cpp_deterministic_bytes(item))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(field.name):
                out += _length_delimited(field.number, cpp_deterministic_bytes(value))
        else:
            out += _scalar_field_bytes(message, field)
    return bytes(out)


def _map_entry(message, field, key, value) -> bytes:
    """One map entry, key (field 1) then value (field 2), both always written.

    upb's own bytes serve: no map value type in TensorFlow's schemas holds an
    integer-keyed map itself (tests/unit/test_diagnose.py checks this)."""
    holder = type(message)()
    container = getattr(holder, field.name)
    if field.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
        container[key].CopyFrom(value)
    else:
        container[key] = value
    return _strip_tag_and_length(holder.SerializeToString(deterministic=True))


def _strip_tag_and_length(raw: bytes) -> bytes:
    """The payload of one length-delimited field (tag, length, payload)."""
    _, pos = decode_varint(raw, 0, len(raw))
    length, pos = decode_varint(raw, pos, len(raw))
    return raw[pos: pos + length]


def _scalar_field_bytes(message, field) -> bytes:
    """The encoded bytes of one scalar (or repeated scalar) field, as upb writes them."""
    holder = type(message)()
    if field.is_repeated:
        getattr(holder, field.name).extend(getattr(message, field.name))
    elif field.containing_oneof is not None or field.has_presence:
        if not message.HasField(field.name):
            return b""
        setattr(holder, field.name, getattr(message, field.name))
    else:
        setattr(holder, field.name, getattr(message, field.name))
    return holder.SerializeToString(deterministic=True)
