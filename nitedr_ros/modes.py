"""THE table of pipeline modes: streams, outputs, model roles and the shipped default network of each role.

Dependency-free on purpose (no numpy, no OpenCV): the parameter schema, the node core, the pipeline, the
transports and the commands all import their mode facts from here. Network facts (I/O, role, multiple)
live in :mod:`nitedr_ros.modelspec`.

========  ==============================  ====================================  ===========================
mode      streams                         outputs                               roles (default network)
========  ==============================  ====================================  ===========================
nitedr    rgb, thermal                    derained_rgb, fused                   derain (cleannet),
                                                                                fusion (fusionnet)
stereo    left, right                     derained_left, derained_right         stereo (stereoirr)
single    rgb                             derained_rgb                          derain (mspfn)
full      rgb, left, right, thermal       all four                              derain, fusion, stereo
========  ==============================  ====================================  ===========================

In the fusion modes thermal may be missing (degraded: no ``fused`` output).
"""

from __future__ import annotations

STREAMS: tuple[str, ...] = ('rgb', 'left', 'right', 'thermal')
OUTPUTS: tuple[str, ...] = ('derained_rgb', 'fused', 'derained_left', 'derained_right')
ROLES: tuple[str, ...] = ('derain', 'fusion', 'stereo')
THERMAL_STREAM = 'thermal'
FUSED_OUTPUT = 'fused'

# mode -> role -> (network, configuration): the shipped defaults.
DEFAULT_NETWORKS: dict[str, dict[str, tuple[str, str]]] = {
    'nitedr': {'derain': ('cleannet', 'realtime'), 'fusion': ('fusionnet', 'realtime')},
    'stereo': {'stereo': ('stereoirr', 'realtime')},
    'single': {'derain': ('mspfn', 'realtime')},
    'full': {'derain': ('cleannet', 'realtime'), 'fusion': ('fusionnet', 'realtime'),
             'stereo': ('stereoirr', 'realtime')},
}
MODES: tuple[str, ...] = tuple(DEFAULT_NETWORKS)
MODE_ROLES: dict[str, tuple[str, ...]] = {mode: tuple(roles) for mode, roles in DEFAULT_NETWORKS.items()}
MODE_STREAMS: dict[str, tuple[str, ...]] = {
    'nitedr': ('rgb', 'thermal'),
    'stereo': ('left', 'right'),
    'single': ('rgb',),
    'full': ('rgb', 'left', 'right', 'thermal'),
}
# output -> the input stream whose header (and camera_info) it carries
OUTPUT_SOURCE: dict[str, str] = {
    'derained_rgb': 'rgb',
    'fused': 'rgb',
    'derained_left': 'left',
    'derained_right': 'right',
}
# modes that fuse thermal into the derained RGB (thermal silent = degraded, no ``fused``)
FUSION_MODES: tuple[str, ...] = tuple(mode for mode, roles in MODE_ROLES.items() if 'fusion' in roles)
MODE_OUTPUTS: dict[str, tuple[str, ...]] = {
    mode: tuple(o for o in OUTPUTS
                if OUTPUT_SOURCE[o] in streams and (o != FUSED_OUTPUT or mode in FUSION_MODES))
    for mode, streams in MODE_STREAMS.items()
}
# a network benchmarked or evaluated alone runs in the smallest mode that has its role
ROLE_MODE: dict[str, str] = {'derain': 'single', 'fusion': 'nitedr', 'stereo': 'stereo'}


def default_network(mode: str, role: str) -> tuple[str, str]:
    """``(network, configuration)`` shipped for a role of a mode; KeyError for a role the mode lacks."""
    return DEFAULT_NETWORKS[mode][role]
