"""The node over Eclipse Cyclone DDS with ROS 2 wire conventions, no ROS install needed.

- :mod:`.cdr`: XCDR1 codec, byte-identical to rosbags' ``serialize_cdr``; numpy views, no per-element work.
- :mod:`.idl`: ROS 2 types as Cyclone IDL structs (``pkg::msg::dds_::Type_``), RIHS01 type hash USER_DATA.
- :mod:`.names`: ROS name expansion, namespaces, ``from:=to`` remaps, ``rt/`` DDS topic names.
- :mod:`.participant`: ``DdsNode`` (publishers/subscriptions by ROS name and type, raw write/take, ROS QoS
  presets), ``select_dds_config`` (the shipped loopback, large-sample ``cyclonedds-loopback.xml`` unless
  ``CYCLONEDDS_URI`` or an explicit file is given).
- :mod:`.node_runtime`: ``DdsNodeRuntime``, the node core wired to DDS (``nitedr run --transport dds``).
"""
