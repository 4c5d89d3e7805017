"""XCDR1 little-endian codec for ROS 2 messages, with numpy for every primitive array.

This is the payload format ROS 2 puts on DDS (and rosbag2 stores): a 4-byte encapsulation header
``00 01 00 00`` (plain CDR, little endian) followed by the fields in declaration order, each primitive
aligned to its own size (at most 8) counted from the end of the header; strings are a uint32 length
including the terminating NUL, the bytes and the NUL; sequences are a uint32 count and the elements;
fixed arrays are just the elements. No trailing padding.

Messages are the ``rosbags`` typestore classes, so the bag tools and the DDS runtime hand the node core
the same objects. The layout comes from the typestore's field definitions; the encoder and decoder here
are this project's own. Primitive sequences never pass through Python lists: ``decode`` returns
``np.frombuffer`` views of the payload (zero-copy, read-only when the payload is ``bytes``) and ``encode``
copies each array's memory once into the output buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from rosbags.typesys.base import normalize_fieldname

from ...errors import NitedrError

ENCAPSULATION_CDR_LE = b'\x00\x01\x00\x00'
ENCAPSULATION_CDR_BE = b'\x00\x00\x00\x00'

# ROS primitive -> (struct code, size, numpy dtype); matches rosbags' Python value conventions
_PRIMITIVES: dict[str, tuple[str, int, str]] = {
    'bool': ('?', 1, 'bool'),
    'byte': ('b', 1, 'int8'),
    'char': ('B', 1, 'uint8'),
    'int8': ('b', 1, 'int8'),
    'uint8': ('B', 1, 'uint8'),
    'int16': ('h', 2, '<i2'),
    'uint16': ('H', 2, '<u2'),
    'int32': ('i', 4, '<i4'),
    'uint32': ('I', 4, '<u4'),
    'int64': ('q', 8, '<i8'),
    'uint64': ('Q', 8, '<u8'),
    'float32': ('f', 4, '<f4'),
    'float64': ('d', 8, '<f8'),
}

_NODE_BASE, _NODE_NAME, _NODE_ARRAY, _NODE_SEQUENCE = 1, 2, 3, 4
_U32 = struct.Struct('<I')


class CdrError(NitedrError):
    """A payload that does not decode as the named type, or a message that cannot be encoded."""


class _Writer:
    """Growing output buffer with CDR alignment relative to the end of the encapsulation header."""

    __slots__ = ('buf',)

    def __init__(self) -> None:
        self.buf = bytearray(ENCAPSULATION_CDR_LE)

    def align(self, size: int) -> None:
        misalign = (len(self.buf) - 4) % size
        if misalign:
            self.buf.extend(bytes(size - misalign))


def _string_bytes(value: str) -> bytes:
    raw = value.encode()
    return _U32.pack(len(raw) + 1) + raw + b'\0'


class CdrCodec:
    """Encoder/decoder for one ROS message type (``pkg/msg/Type``) of a rosbags typestore."""

    def __init__(self, typestore: Any, msgtype: str) -> None:
        if msgtype not in typestore.fielddefs:
            raise CdrError(f'unknown message type {msgtype!r} (not in the type store)')
        self.msgtype = msgtype
        self._typestore = typestore
        self._encoders: dict[str, Callable[[_Writer, Any], None]] = {}
        self._decoders: dict[str, Callable[[memoryview, int], tuple[Any, int]]] = {}
        self._encode = self._struct_encoder(msgtype)
        self._decode = self._struct_decoder(msgtype)

    # -- public API -------------------------------------------------------------------------------
    def encode(self, msg: Any) -> bytearray:
        """The XCDR1 payload of ``msg`` (encapsulation header included)."""
        out = _Writer()
        try:
            self._encode(out, msg)
        except (struct.error, AttributeError, TypeError, ValueError) as exc:
            raise CdrError(f'cannot encode {self.msgtype}: {exc}') from exc
        return out.buf

    def decode(self, payload: bytes | bytearray | memoryview) -> Any:
        """The message in ``payload``; primitive arrays are numpy views into it."""
        view = memoryview(payload).cast('B')
        if len(view) < 4 or bytes(view[:4]) != ENCAPSULATION_CDR_LE:
            header = bytes(view[:4]).hex(' ') or 'nothing'
            raise CdrError(f'{self.msgtype}: payload does not start with the XCDR1 little-endian '
                           f'header 00 01 00 00 (got {header})')
        try:
            msg, _ = self._decode(view, 4)
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise CdrError(f'{self.msgtype}: truncated or malformed payload ({len(view)} bytes): {exc}') \
                from exc
        return msg

    # -- compilation -----------------------------------------------------------------------------
    def _fields(self, msgtype: str) -> list[tuple[str, tuple]]:
        try:
            return list(self._typestore.fielddefs[msgtype][1])
        except KeyError:
            raise CdrError(f'unknown message type {msgtype!r} (not in the type store)') from None

    def _struct_encoder(self, msgtype: str) -> Callable[[_Writer, Any], None]:
        if msgtype in self._encoders:
            return self._encoders[msgtype]
        steps: list[Callable[[_Writer, Any], None]] = []

        def encode_struct(out: _Writer, msg: Any) -> None:
            for step in steps:
                step(out, msg)

        self._encoders[msgtype] = encode_struct
        for name, desc in self._fields(msgtype):
            steps.append(self._field_encoder(_attr(name), desc))
        return encode_struct

    def _struct_decoder(self, msgtype: str) -> Callable[[memoryview, int], tuple[Any, int]]:
        if msgtype in self._decoders:
            return self._decoders[msgtype]
        cls = self._typestore.types[msgtype]
        steps: list[Callable[[memoryview, int], tuple[Any, int]]] = []

        def decode_struct(view: memoryview, pos: int) -> tuple[Any, int]:
            values = []
            for step in steps:
                value, pos = step(view, pos)
                values.append(value)
            return cls(*values), pos

        self._decoders[msgtype] = decode_struct
        for _, desc in self._fields(msgtype):
            steps.append(self._field_decoder(desc))
        return decode_struct

    def _field_encoder(self, attr: str, desc: tuple) -> Callable[[_Writer, Any], None]:
        node, arg = desc
        if node == _NODE_BASE:
            element = self._element_encoder(desc)
            return lambda out, msg: element(out, getattr(msg, attr))
        if node == _NODE_NAME:
            sub = self._struct_encoder(arg)
            return lambda out, msg: sub(out, getattr(msg, attr))
        element_desc, length = arg
        is_sequence = node == _NODE_SEQUENCE
        if element_desc[0] == _NODE_BASE and element_desc[1][0] in _PRIMITIVES:
            _, size, dtype = _PRIMITIVES[element_desc[1][0]]

            def encode_primitive_array(out: _Writer, msg: Any) -> None:
                values = np.ascontiguousarray(getattr(msg, attr), dtype=dtype)
                if is_sequence:
                    out.align(4)
                    out.buf.extend(_U32.pack(values.size))
                elif values.size != length:
                    raise ValueError(f'field {attr}: array needs {length} elements, got {values.size}')
                if values.size:
                    out.align(size)
                    out.buf.extend(memoryview(values).cast('B'))
            return encode_primitive_array
        element = self._element_encoder(element_desc)

        def encode_array(out: _Writer, msg: Any) -> None:
            values = getattr(msg, attr)
            if is_sequence:
                out.align(4)
                out.buf.extend(_U32.pack(len(values)))
            elif len(values) != length:
                raise ValueError(f'field {attr}: array needs {length} elements, got {len(values)}')
            for value in values:
                element(out, value)
        return encode_array

    def _element_encoder(self, desc: tuple) -> Callable[[_Writer, Any], None]:
        node, arg = desc
        if node == _NODE_NAME:
            return self._struct_encoder(arg)
        if node != _NODE_BASE:
            raise CdrError(f'{self.msgtype}: nested arrays are not ROS message fields')
        base = arg[0]
        if base == 'string':
            def encode_string(out: _Writer, value: str) -> None:
                out.align(4)
                out.buf.extend(_string_bytes(value))
            return encode_string
        if base not in _PRIMITIVES:
            raise CdrError(f'{self.msgtype}: unsupported field type {base!r}')
        code, size, _ = _PRIMITIVES[base]
        packer = struct.Struct('<' + code)

        def encode_primitive(out: _Writer, value: Any) -> None:
            out.align(size)
            out.buf.extend(packer.pack(value))
        return encode_primitive

    def _field_decoder(self, desc: tuple) -> Callable[[memoryview, int], tuple[Any, int]]:
        node, arg = desc
        if node in (_NODE_BASE, _NODE_NAME):
            return self._element_decoder(desc)
        element_desc, length = arg
        is_sequence = node == _NODE_SEQUENCE
        if element_desc[0] == _NODE_BASE and element_desc[1][0] in _PRIMITIVES:
            _, size, dtype = _PRIMITIVES[element_desc[1][0]]

            def decode_primitive_array(view: memoryview, pos: int) -> tuple[Any, int]:
                count = length
                if is_sequence:
                    pos = _aligned(pos, 4)
                    (count,) = _U32.unpack_from(view, pos)
                    pos += 4
                if count:
                    pos = _aligned(pos, size)
                end = pos + count * size
                if end > len(view):
                    raise ValueError(f'array of {count} x {size} bytes runs past the end')
                return np.frombuffer(view, dtype=dtype, count=count, offset=pos), end
            return decode_primitive_array
        element = self._element_decoder(element_desc)

        def decode_array(view: memoryview, pos: int) -> tuple[Any, int]:
            count = length
            if is_sequence:
                pos = _aligned(pos, 4)
                (count,) = _U32.unpack_from(view, pos)
                pos += 4
                if count > len(view) - pos:
                    raise ValueError(f'sequence count {count} exceeds the payload')
            values = []
            for _ in range(count):
                value, pos = element(view, pos)
                values.append(value)
            return values, pos
        return decode_array

    def _element_decoder(self, desc: tuple) -> Callable[[memoryview, int], tuple[Any, int]]:
        node, arg = desc
        if node == _NODE_NAME:
            return self._struct_decoder(arg)
        if node != _NODE_BASE:
            raise CdrError(f'{self.msgtype}: nested arrays are not ROS message fields')
        base = arg[0]
        if base == 'string':
            def decode_string(view: memoryview, pos: int) -> tuple[str, int]:
                pos = _aligned(pos, 4)
                (size,) = _U32.unpack_from(view, pos)
                pos += 4
                if size == 0 or pos + size > len(view):
                    raise ValueError(f'string of {size} bytes does not fit')
                return bytes(view[pos:pos + size - 1]).decode(), pos + size
            return decode_string
        if base not in _PRIMITIVES:
            raise CdrError(f'{self.msgtype}: unsupported field type {base!r}')
        code, size, _ = _PRIMITIVES[base]
        unpacker = struct.Struct('<' + code)

        def decode_primitive(view: memoryview, pos: int) -> tuple[Any, int]:
            pos = _aligned(pos, size)
            return unpacker.unpack_from(view, pos)[0], pos + size
        return decode_primitive


def _aligned(pos: int, size: int) -> int:
    """``pos`` (counted from the payload start, header included) rounded up to ``size`` after the header."""
    misalign = (pos - 4) % size
    return pos + size - misalign if misalign else pos


def _attr(field: str) -> str:
    """The attribute name rosbags gives a field (Python keywords get a suffix)."""
    return normalize_fieldname(field)


class CodecCache:
    """One codec per message type, built on first use."""

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore
        self._codecs: dict[str, CdrCodec] = {}

    def get(self, msgtype: str) -> CdrCodec:
        codec = self._codecs.get(msgtype)
        if codec is None:
            codec = self._codecs[msgtype] = CdrCodec(self.typestore, msgtype)
        return codec

    def encode(self, msg: Any, msgtype: str | None = None) -> bytearray:
        return self.get(msgtype or msg.__msgtype__).encode(msg)

    def decode(self, payload: bytes | bytearray | memoryview, msgtype: str) -> Any:
        return self.get(msgtype).decode(payload)
