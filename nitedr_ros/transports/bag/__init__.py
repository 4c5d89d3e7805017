"""rosbag2 tools on the ``rosbags`` library, no ROS install needed (``nitedr bag ...``).

- :mod:`.reader`: open rosbag2 (sqlite3, mcap) and ROS 1 bags with clear errors; image topics and stream
  assignment.
- :mod:`.writer`: ``AtomicBagWriter`` (temporary name, renamed when complete; ``--force`` to replace),
  copying every input topic (ROS 1 converted to ROS 2), ``Ros2PayloadConverter``.
- :mod:`.derain`: ``derain_bag`` (the node core in synchronous mode over a bag).
- :mod:`.sample`: ``make_sample`` (the night-rain RGB + stereo + thermal sample bag).
- :mod:`.player` / :mod:`.recorder`: play a bag over DDS with its timing (and ``/clock``); record DDS topics.
- :mod:`.ros2_messages`: core outputs as ROS 2 messages; :mod:`.demo_report`: ``nitedr demo``'s figures.
"""
