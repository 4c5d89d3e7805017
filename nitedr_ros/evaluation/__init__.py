"""Evaluation: image-quality metrics (:mod:`.metrics`, numpy) and the evaluation runner (:mod:`.evaluate`)."""
