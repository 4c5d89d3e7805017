"""Offline calibration of the camera rig (``nitedr calibrate-thermal``), OpenCV only.

- :mod:`.thermal_rgb`: detect a calibration target in both cameras, estimate the thermal-to-RGB homography
  (RANSAC) and, with intrinsics, the extrinsic pose; reprojection errors; the parameter YAML the node loads.
- :mod:`.overlay`: the check image (thermal edges over the RGB frame, with and without registration) and an
  edge-alignment score.
- :mod:`.synthetic_rig`: a thermal + RGB rig rendered with known intrinsics, pose and target positions (tests,
  the misaligned sample bag).
"""
