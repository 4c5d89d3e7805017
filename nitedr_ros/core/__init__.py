"""ROS-agnostic node core shared by the rclpy node, the DDS runtime and ``nitedr bag derain``.

No rclpy, no cyclonedds, no torch. Modules (import what you need; this package imports nothing eagerly):

- ``node_core``: :class:`NodeCore` (frame flow, degradation, diagnostics, live parameters) and the
  :class:`OutputSink` protocol a transport implements.
- ``parameters``: THE parameter schema (``SCHEMA``), ``validate``, ``check_changes``, the
  ``/**: ros__parameters:`` YAML loader ``load_parameter_file`` and ``pipeline_config``.
- ``sync``: the approximate-time :class:`Synchronizer`; ``sync_filter``: message_filters-style wrappers.
- ``images``: Image/CompressedImage <-> ImageFrame and :class:`ImageFields` for publishing.
- ``diagnostics``: :class:`DiagnosticStatus` / :class:`Level` (plain dataclasses) and the counters.
- ``clock``: the :class:`Clock` protocol, ``SystemClock``, ``ManualClock``, stamp helpers (integer ns).
- ``topics``: stream/output names, their relative topics, the modes (nitedr, stereo, single, full) and
  what each uses.
- ``frame_flow``: latest-only buffer, worker and ticker threads; ``testing``: fake messages, a recording
  sink and a pass-through pipeline for tests and benchmarks.

How a transport uses the core
-----------------------------
1. Parameters: ``values = load_parameter_file(path).values`` (or read them from ROS, declared from
   ``parameters.SCHEMA``); pass the dict to ``NodeCore``. ``pipeline_config(values)`` is what the default
   pipeline factory builds from; pass ``pipeline=`` to inject a ready one (tests: ``PassthroughPipeline``).
2. Implement the sink: ``publish_image(output, header, fields)`` publishes ``fields`` (``height``, ``width``,
   ``encoding``, ``is_bigendian``, ``step``; data via ``fields.as_array()`` for rclpy, ``as_bytes()`` or
   ``as_numpy()`` otherwise) with the given header object *unchanged* on ``core.output_topics()[output]``;
   ``publish_camera_info(output, header, info)`` publishes a copy of ``info`` with ``header`` on
   ``core.output_camera_info_topics()[output]``; ``publish_diagnostics(statuses, stamp_ns)`` one
   DiagnosticArray (``status.level`` is the byte value); ``publish_debug(name, value)`` a Float64 on
   ``~/debug/<name>``. Sink calls come from the worker thread (or inline in synchronous mode); exceptions
   are caught, logged and never stop the node.
3. Give it the node clock: ``now_ns()`` in integer nanoseconds, 0 while sim time has not started
   (bag tool: ``ManualClock`` set to each message's bag time before handing the message over).
4. Construct and start::

       core = NodeCore(values, sink=sink, clock=clock, node_name='nitedr_node', logger=logger)
       core.start()                      # builds the pipeline in the worker thread; raises its errors

   ``logger`` needs ``info/warning/error(str)`` (an rclpy logger works). ``synchronous=True`` (bag tool)
   runs no thread: each set is processed inline, in order, and diagnostics follow the given clock.
5. Subscribe ``core.input_topics()`` (stream -> topic) and ``core.camera_info_topics()``, then tell the core
   the names really subscribed: ``core.set_input_topic_names({stream: resolved})`` (diagnostics show
   them); in the callbacks call only ``core.on_image(stream, msg)`` / ``core.on_camera_info(stream, msg)``
   (thread-safe, cheap, never raise). A sample the transport cannot decode goes to
   ``core.report_bad_message(stream, problem)``; incompatible-QoS events to
   ``core.report_qos_event(topic, description)``.
6. Every ``core.diagnostics_period_s`` call ``core.publish_diagnostics()`` from a timer (or construct with
   ``own_timer=True``, the default when threaded, and the core ticks itself).
7. Live parameter changes: ``ok, reason = core.check_parameters(changes)`` to validate,
   ``core.set_parameters(changes)`` to apply all of them or none.
8. At the end of a bag: ``core.flush()`` (emits the last sets), or ``core.discard_pending()`` to drop
   (and count) what the synchronizers hold; always ``core.stop()``.
"""
