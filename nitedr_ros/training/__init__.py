"""Training (torch, offline): losses, per-network objectives, patch datasets, the trainer, publishing.

* :mod:`.losses` -- pixel, SSIM, edge, fusion, illumination, contrastive and stereo terms.
* :mod:`.objectives` -- each network's paper losses as one module; default recipes (``RECIPES``).
* :mod:`.datasets` -- deterministic training patches (torch Dataset over :mod:`nitedr_ros.data`).
* :mod:`.trainer` -- the loop: AMP, checkpoint/resume, CSV log, loss curve, validation, DDP.
* :mod:`.publish` -- checkpoint -> ONNX + model card in ``models/``.
"""
