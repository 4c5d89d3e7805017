"""Checkpoint files: weights plus the network name, configuration and provenance needed to rebuild them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..fileio import atomic_output
from . import build_network

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], model: torch.nn.Module, network: str, config: str,
                    overrides: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary name, then rename)."""
    out = Path(path)
    payload = {
        'format': FORMAT_VERSION,
        'network': network,
        'config': config,
        'overrides': dict(overrides or {}),
        'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
        'meta': dict(meta or {}),
    }
    payload.update(extra or {})
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    return out


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load the raw checkpoint dictionary, with a clear error for a missing or foreign file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f'checkpoint not found: {p}')
    try:
        payload = torch.load(p, map_location='cpu', weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ConfigError(f'cannot read checkpoint {p}: {exc}') from exc
    if not isinstance(payload, dict) or 'state_dict' not in payload or 'network' not in payload:
        raise ConfigError(f'{p} is not a nitedr_ros checkpoint (no network/state_dict)')
    return payload


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the network a checkpoint was saved from and load its weights; returns (model, payload)."""
    payload = read_checkpoint(path)
    return model_from_payload(payload, path), payload


def model_from_payload(payload: dict[str, Any],
                       path: str | os.PathLike[str] = '<checkpoint>') -> torch.nn.Module:
    """The network of a :func:`read_checkpoint` payload with its weights loaded, in eval mode."""
    model = build_network(payload['network'], payload['config'], **payload.get('overrides', {}))
    try:
        model.load_state_dict(payload['state_dict'])
    except RuntimeError as exc:
        raise ConfigError(f'checkpoint {path} does not match {payload["network"]}/{payload["config"]}: '
                          f'{exc}') from exc
    model.eval()
    return model


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a checkpoint file (recorded in exported ONNX metadata as ``nitedr.checkpoint_sha256``)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_metadata(path: str | os.PathLike[str], payload: dict[str, Any]) -> dict[str, Any]:
    """ONNX metadata_props naming the weights of an export: file name, sha256, overrides, training meta.

    ``nitedr bench --model X.onnx --checkpoint Y.pt`` compares ``nitedr.checkpoint_sha256`` with Y.
    """
    metadata: dict[str, Any] = {'nitedr.weights': 'checkpoint', 'nitedr.checkpoint': Path(path).name,
                                'nitedr.checkpoint_sha256': checkpoint_sha256(path)}
    if payload.get('overrides'):
        metadata['nitedr.overrides'] = payload['overrides']
    if payload.get('meta'):
        metadata['nitedr.training'] = payload['meta']
    return metadata
