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


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def cpp_deterministic_bytes(message) -> bytes:
    """``message`` serialized as C++ SerializeToStringDeterministic would."""
    descriptor = message.DESCRIPTOR
    if not _needs_reencoding(descriptor):
        return message.SerializeToString(deterministic=True)
    out = bytearray()
    for field in sorted(descriptor.fields, key=lambda f: f.number):
        value = getattr(message, field.name)
        if _is_map(field):
            entry_type = field.message_class if hasattr(field, "message_class") else None
            key_field = field.message_type.fields_by_name["key"]
            keys = sorted(value.keys()) if key_field.type in _INT_KEY_TYPES else sorted(
                value.keys(), key=lambda k: k.encode() if isinstance(k, str) else k)
            for key in keys:
                entry = _map_entry(message, field, key, value[key], entry_type)
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


def _map_entry(message, field, key, value, _entry_type) -> bytes:
    """One map entry: key (field 1) then value (field 2), both always written."""
    holder = type(message)()
    container = getattr(holder, field.name)
    value_field = field.message_type.fields_by_name["value"]
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        container[key].CopyFrom(value)
    else:
        container[key] = value
    raw = holder.SerializeToString(deterministic=True)   # tag + length + entry(key, value)
    entry = _strip_tag_and_length(raw)
    if value_field.type == FieldDescriptor.TYPE_MESSAGE and _needs_reencoding(value_field.message_type):
        key_only = type(message)()
        getattr(key_only, field.name)[key]  # default value
        key_bytes = _strip_tag_and_length(key_only.SerializeToString(deterministic=True))
        key_part = key_bytes[: _value_offset(key_bytes)]
        entry = key_part + _length_delimited(2, cpp_deterministic_bytes(value))
    return entry


def _strip_tag_and_length(raw: bytes) -> bytes:
    pos = 0
    while raw[pos] & 0x80:
        pos += 1
    pos += 1
    length, shift = 0, 0
    while True:
        byte = raw[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
        shift += 7
    return raw[pos: pos + length]


def _value_offset(entry: bytes) -> int:
    """Offset of field 2 in a map entry whose field 1 (the key) comes first."""
    pos = 0
    tag = entry[pos]
    pos += 1
    wire_type = tag & 7
    if wire_type == 0:
        while entry[pos] & 0x80:
            pos += 1
        return pos + 1
    if wire_type == 1:
        return pos + 8
    if wire_type == 5:
        return pos + 4
    length, shift = 0, 0
    while True:
        byte = entry[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
        shift += 7
    return pos + length


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
