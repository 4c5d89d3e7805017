"""ROS 2 message types as Cyclone DDS IDL structs, named and hashed the way ROS 2 does.

A DDS topic needs a type: its name (``sensor_msgs::msg::dds_::Image_``) and its XTypes type object travel
in discovery, so the struct built here must have exactly the fields of the ROS message (``uint8[]`` is
``sequence<uint8>``, ``byte`` is ``octet``, ``char`` is ``uint8``, final extensibility, no inheritance).
The classes are generated from a rosbags typestore, so any type a bag or the node uses is available.
They only describe the type: payloads are encoded and decoded by :mod:`.cdr` and written raw.
"""

from __future__ import annotations

from typing import Any

from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl import types as idl_types

from .cdr import CdrError

_IDL_PRIMITIVES: dict[str, Any] = {
    'bool': bool,
    'byte': idl_types.byte,
    'char': idl_types.uint8,
    'int8': idl_types.int8,
    'uint8': idl_types.uint8,
    'int16': idl_types.int16,
    'uint16': idl_types.uint16,
    'int32': idl_types.int32,
    'uint32': idl_types.uint32,
    'int64': idl_types.int64,
    'uint64': idl_types.uint64,
    'float32': idl_types.float32,
    'float64': idl_types.float64,
}

_NODE_BASE, _NODE_NAME, _NODE_ARRAY, _NODE_SEQUENCE = 1, 2, 3, 4


def dds_type_name(msgtype: str) -> str:
    """``sensor_msgs/msg/Image`` -> ``sensor_msgs::msg::dds_::Image_`` (ROS 2 name mangling)."""
    parts = msgtype.split('/')
    if len(parts) != 3 or not all(parts):
        raise CdrError(f'not a ROS 2 message type name: {msgtype!r} (expected pkg/msg/Type)')
    package, kind, name = parts
    return f'{package}::{kind}::dds_::{name}_'


def ros_type_from_dds(type_name: str) -> str | None:
    """``sensor_msgs::msg::dds_::Image_`` -> ``sensor_msgs/msg/Image`` (None if not a ROS 2 type name)."""
    parts = type_name.split('::')
    if len(parts) != 4 or parts[2] != 'dds_' or not parts[3].endswith('_'):
        return None
    return f'{parts[0]}/{parts[1]}/{parts[3][:-1]}'


def type_hash_user_data(typestore: Any, msgtype: str) -> bytes:
    """The USER_DATA ROS 2 (Iron and later) attaches to endpoints: ``typehash=RIHS01_<hex>;``."""
    return f'typehash={typestore.hash_rihs01(msgtype)};'.encode()


class IdlTypes:
    """Generated IDL struct classes for the types of one typestore (built on demand, cached)."""

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore
        self._classes: dict[str, type[IdlStruct]] = {}

    def get(self, msgtype: str) -> type[IdlStruct]:
        cls = self._classes.get(msgtype)
        if cls is None:
            cls = self._build(msgtype)
        return cls

    def _build(self, msgtype: str) -> type[IdlStruct]:
        try:
            fields = self.typestore.fielddefs[msgtype][1]
        except KeyError:
            raise CdrError(f'unknown message type {msgtype!r} (not in the type store)') from None
        annotations = {name: self._field_type(msgtype, desc) for name, desc in fields}
        class_name = msgtype.replace('/', '__')
        cls = make_idl_struct(class_name, dds_type_name(msgtype), annotations)
        self._classes[msgtype] = cls
        return cls

    def _field_type(self, msgtype: str, desc: tuple) -> Any:
        node, arg = desc
        if node == _NODE_NAME:
            return self.get(arg)
        if node == _NODE_BASE:
            base, bound = arg
            if base == 'string':
                return idl_types.bounded_str[bound] if bound else str
            if base not in _IDL_PRIMITIVES:
                raise CdrError(f'{msgtype}: unsupported field type {base!r}')
            return _IDL_PRIMITIVES[base]
        element_desc, length = arg
        element = self._field_type(msgtype, element_desc)
        if node == _NODE_ARRAY:
            return idl_types.array[element, length]
        return idl_types.sequence[element, length] if length else idl_types.sequence[element]
