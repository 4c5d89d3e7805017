"""Datasets and synthetic data (numpy/cv2, torch-free).

* :mod:`.layouts` -- loaders for the public deraining/fusion folder layouts (``open_dataset``).
* :mod:`.split` -- deterministic, recorded train/validation splits.
* :mod:`.augment` -- aligned patch crops and flips/rotations.
* :mod:`.rain_renderer` -- synthetic night rain (streaks in depth, lights, noise, stereo, thermal).
* :mod:`.imageio` -- image reading/writing and :class:`~.imageio.DatasetError`.
"""
