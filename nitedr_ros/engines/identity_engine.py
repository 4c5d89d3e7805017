"""A pass-through engine (numpy only): outputs are copies of the inputs, in contract order.

For tests and CI of everything around inference (pipeline, node core, transports) where no model file or
accelerator is available. Output ``i`` is input ``i`` (or input 0 when there are fewer inputs), so
``derained = image``, ``fused = visible``, ``left_derained = left``, ``right_derained = right``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError
from ..modelspec import NETWORKS
from .base import InferenceEngine, check_inputs


class IdentityEngine(InferenceEngine):
    """:class:`InferenceEngine` that returns its inputs; I/O names from a network spec or given."""

    backend = 'identity'

    def __init__(self, network: str = 'cleannet', *, input_names: tuple[str, ...] | None = None,
                 output_names: tuple[str, ...] | None = None) -> None:
        spec = NETWORKS.get(network)
        if spec is None and (input_names is None or output_names is None):
            raise ConfigError(f'identity engine: unknown network {network!r}; '
                              f'choose one of {", ".join(NETWORKS)}')
        self.input_names = tuple(input_names) if input_names else spec.input_names
        self.output_names = tuple(output_names) if output_names else spec.output_names
        self.metadata = {'nitedr.network': network, 'nitedr.precision': 'fp32'}
        if spec is not None:
            self.metadata['nitedr.multiple_of'] = str(spec.multiple_of)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = check_inputs(inputs, self.input_names)
        started = time.perf_counter()
        outputs = {}
        for index, name in enumerate(self.output_names):
            source = self.input_names[index if index < len(self.input_names) else 0]
            outputs[name] = feed[source].copy()
        self.last_inference_ms = (time.perf_counter() - started) * 1000.0
        return outputs

    def describe(self) -> dict[str, str]:
        facts = self._describe_common()
        facts.update({'model': 'identity (pass-through)', 'precision': 'fp32'})
        return facts
