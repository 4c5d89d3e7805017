"""nitedr_ros: night-rain removal for vehicle cameras, from network to ROS 2 topic.

Data path (dependencies point one way along it):
``networks`` (torch, offline) -> ONNX in ``models/`` -> ``engines`` (TensorRT, ONNX Runtime, torch)
-> ``pipeline`` (pre-process, infer, post-process, timings) -> ``core`` (synchronizer, frame flow,
diagnostics, parameters) -> ``transports`` (rclpy node, DDS runtime, rosbag2 tools).
"""

__version__ = '0.1.0'
