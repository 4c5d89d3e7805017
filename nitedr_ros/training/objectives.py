"""Per-network training objectives: the network(s) plus the paper's losses, as one ``nn.Module``.

``objective(batch) -> {'total': ..., <term>: ...}`` runs the whole training forward pass (so
DistributedDataParallel can wrap it), ``predict(batch)`` gives validation outputs, ``after_step()`` runs
post-optimiser updates (Rainmer's momentum encoder), ``network`` is the module that is checkpointed and
exported. Default hyper-parameters per network are in :data:`RECIPES` (see each objective's docstring for
where they come from); any entry can be overridden. ``identity_init`` zeroes the last layer of the residual
networks before training (``NetworkSpec.output_layer``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..modelspec import NETWORKS
from ..networks.color import rgb_to_ycbcr
from . import losses

# Optimiser/schedule/loss defaults per network. lr: peak learning rate (cosine decay to eta_min).
RECIPES: dict[str, dict[str, Any]] = {
    # NiteDR stage 1 (DRSformer recipe): AdamW 3e-4, wd 1e-4, L1; we add 0.1 (1 - SSIM) (structural term).
    'cleannet': dict(optimizer='adamw', lr=3e-4, weight_decay=1e-4, eta_min=1e-6, grad_clip=0.01,
                     pixel='l1', ssim_weight=0.1, synthetic=0.0, identity_init=1, amp=0),
    # Rainmer: AdamW 3e-4, Charbonnier + 0.1 (1 - SSIM) + 0.1 contrastive, 4 negatives, temperature 1;
    # positive: the key encoder's prompts of the input itself (see RainmerObjective).
    'rainmer': dict(optimizer='adamw', lr=3e-4, weight_decay=0.0, prompt_weight_decay=0.01, eta_min=1e-6,
                    grad_clip=0.01, ssim_weight=0.1, contrastive_weight=0.1, negatives=4, temperature=1.0,
                    momentum=0.999, positive='input', synthetic=0.5, identity_init=1, amp=0),
    # MSPFN: Adam 5e-4, Charbonnier + 0.05 Charbonnier on Laplacian edges.
    'mspfn': dict(optimizer='adam', lr=5e-4, weight_decay=0.0, eta_min=1e-6, grad_clip=0.0, edge_weight=0.05,
                  synthetic=0.5, identity_init=1),
    # NiteDR stage 2: Adam 1e-4 (fusion) with the refinement's SCI terms, 3 cascaded stages, grad clip 5.
    'fusionnet': dict(optimizer='adam', lr=1e-4, weight_decay=0.0, eta_min=1e-6, grad_clip=5.0, stages=3,
                      ssim_weight=1.0, intensity_weight=20.0, gradient_weight=2.0, fidelity_weight=1.5,
                      smooth_weight=1.0, refined_weight=1.0, chroma_weight=5.0, visible_weight=0.0,
                      synthetic=0.0, identity_init=0),
    # StereoIRR (no published recipe): Adam 5e-4, per-view Charbonnier + 0.1 (1 - SSIM), consistency 0.05.
    'stereoirr': dict(optimizer='adam', lr=5e-4, weight_decay=0.0, eta_min=1e-6, grad_clip=0.0,
                      ssim_weight=0.1, consistency_weight=0.05, synthetic=1.0,
                      identity_init=1),
}

# amp=0: mixed precision diverges the network (measured on an H200: CleanNet and Rainmer under bf16 autocast
# went from loss 0.09 to 0.26 at the peak learning rate and ended 10-20 dB below their input; in fp32 the
# same runs gained 3 dB in 1000 steps), so --amp is ignored for it with a warning.

# Configuration-specific departures from the recipes above (measured on the 2-core CPU: the 7k-parameter
# realtime FusionNet barely moves in a CPU budget at the published 1e-4).
CONFIG_RECIPES: dict[tuple[str, str], dict[str, Any]] = {('fusionnet', 'realtime'): {'lr': 1e-3}}



def recipe(network: str, overrides: dict[str, Any] | None = None, config: str = 'paper') -> dict[str, Any]:
    """The default recipe of a network (and configuration) with ``overrides`` applied (unknown keys are an
    error)."""
    if network not in RECIPES:
        raise ConfigError(f'no training recipe for {network!r}; choose one of {", ".join(RECIPES)}')
    merged = {**RECIPES[network], **CONFIG_RECIPES.get((network, config), {})}
    merged['kind'] = NETWORKS[network].role  # what patches it trains on: the network's pipeline role
    for key, value in (overrides or {}).items():
        if key not in merged:
            known = ', '.join(sorted(merged))
            raise ConfigError(f'unknown {network} training setting {key!r}; known: {known}')
        default = merged[key]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        try:
            merged[key] = type(default)(value) if numeric else value
        except ValueError:
            raise ConfigError(f'{network} training setting {key}: {value!r} is not a number') from None
    return merged


def _unclamp(network: nn.Module) -> None:
    """Train without the output clamp where the network has one (its gradient is zero outside [0, 1])."""
    if hasattr(network, 'clamp_output'):
        network.clamp_output = False


class Objective(nn.Module):
    """Base class; see the module docstring."""

    kind = 'derain'
    ddp_find_unused_parameters = False  # every trainable parameter takes part in each step

    def __init__(self, network: nn.Module, settings: dict[str, Any]) -> None:
        super().__init__()
        self.network = network
        self.settings = dict(settings)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation outputs in [0, 1]: ``derained`` (derain), ``left``/``right`` (stereo)."""
        return {'derained': torch.clamp(self.network(batch['rainy']), 0.0, 1.0)}

    def after_step(self) -> None:
        """Called after each optimiser step."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups (frozen modules excluded)."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{'params': params, 'weight_decay': float(self.settings.get('weight_decay', 0.0))}]


def _total(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    terms['total'] = torch.stack([v for k, v in terms.items()]).sum()
    return terms


class CleanNetObjective(Objective):
    """NiteDR stage 1: ``pixel(derained, clean) + ssim_weight (1 - SSIM)``; pixel = L1 (published) or
    Charbonnier."""

    def __init__(self, network: nn.Module, settings: dict[str, Any]) -> None:
        super().__init__(network, settings)
        _unclamp(network)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.network(batch['rainy'])
        clean = batch['clean']
        terms = {'pixel': losses.pixel_loss(self.settings['pixel'], pred, clean)}
        if self.settings['ssim_weight']:
            terms['ssim'] = self.settings['ssim_weight'] * losses.ssim_loss(pred, clean)
        return _total(terms)


class MSPFNObjective(Objective):
    """MSPFN: ``Charbonnier(derained, clean) + 0.05 Charbonnier(Laplacian(derained), Laplacian(clean))``."""

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.network.forward_train(batch['rainy'])['derained']
        clean = batch['clean']
        return _total({'charbonnier': losses.charbonnier(pred, clean),
                       'edge': self.settings['edge_weight'] * losses.edge_charbonnier(pred, clean)})


class RainmerObjective(Objective):
    """Rainmer: ``Charbonnier + 0.1 (1 - SSIM) + lambda * contrastive`` on the query encoder's prompts.

    Query: the prompts of the rainy input (with gradient). Negatives (key encoder, from the patch dataset):
    the input re-coloured to other mean colours against the chromatic prompt; the clean image with other
    rendered rain layers (or blurred) against the degradation prompt. InfoNCE with cosine logits /
    temperature. The key encoder follows the query encoder by momentum after each step.

    Positive (``positive``): ``'input'`` (default, MoCo style): the key encoder's prompts of the rainy input
    itself. The prompts describe the input's own colour cast and rain; the negatives differ from the input
    in exactly one of them (same content, other colour; same content, other rain), so the only positive
    that they contrast with is the input. ``'target'`` (the clean image's keys) is kept as an option, but
    a clean image has neither the input's rain nor necessarily its colour, so it pulls the degradation
    prompt towards "no rain" while the negatives push it away from "other rain".
    """

    def __init__(self, network: nn.Module, settings: dict[str, Any]) -> None:
        super().__init__(network, settings)
        from ..networks.rainmer import RainmerMomentumKeys

        _unclamp(network)
        keys = RainmerMomentumKeys(network, settings['momentum'])
        object.__setattr__(self, 'keys', keys)  # not a submodule: it would register the network twice
        self.encoder_k = keys.encoder_k          # ... but the key encoder's state is checkpointed
        if settings['positive'] not in ('target', 'input'):
            raise ConfigError(f"rainmer positive must be 'target' or 'input', not {settings['positive']!r}")

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rainy, clean = batch['rainy'], batch['clean']
        pred = self.network(rainy)
        terms = {'charbonnier': losses.charbonnier(pred, clean),
                 'ssim': self.settings['ssim_weight'] * losses.ssim_loss(pred, clean)}
        weight = self.settings['contrastive_weight']
        if weight and 'neg_chromatic' in batch:
            query = self.keys.query_prompts(rainy)
            positive = self.keys.key_prompts(clean if self.settings['positive'] == 'target' else rainy)
            t = self.settings['temperature']
            chromatic = self._key_stack(batch['neg_chromatic'], 'chromatic')
            degradation = self._key_stack(batch['neg_degradation'], 'degradation')
            terms['contrastive'] = weight * (
                losses.info_nce(query.chromatic, positive.chromatic, chromatic, t)
                + losses.info_nce(query.degradation, positive.degradation, degradation, t))
        return _total(terms)

    def _key_stack(self, negatives: torch.Tensor, which: str) -> torch.Tensor:
        b, n = negatives.shape[:2]
        prompts = self.keys.key_prompts(negatives.flatten(0, 1))
        return getattr(prompts, which).view(b, n, -1)

    def after_step(self) -> None:
        self.keys.momentum_update()

    def parameter_groups(self) -> list[dict[str, Any]]:
        prompt_ids = {id(p) for p in self.network.encoder_q.parameters()}
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        return [{'params': [p for p in trainable if id(p) not in prompt_ids],
                 'weight_decay': float(self.settings['weight_decay'])},
                {'params': [p for p in trainable if id(p) in prompt_ids],
                 'weight_decay': float(self.settings['prompt_weight_decay'])}]


class FusionObjective(Objective):
    """NiteDR stage 2 on the frozen stage-1 output: fusion terms weighted by the information measure
    (:func:`losses.fusion_losses`) plus, per cascade stage, the refinement's illumination fidelity
    (``1.5 MSE(illumination, stage input)``) and edge-aware smoothness. ``refined_weight`` applies the
    fusion terms to the luminance of the refined (deployed) output too: with the SCI terms alone the
    refinement learns illumination ~ input and its division brightens the output towards white.
    ``chroma_weight`` x L1 keeps the refined chroma at the visible image's (the per-channel division tints).

    ``cleannet``: the frozen stage-1 network; without one the clean target stands in for its output
    (useful for tests and for fusion-only training on rain-free data).
    """

    kind = 'fusion'

    def __init__(self, network: nn.Module, settings: dict[str, Any],
                 cleannet: nn.Module | None = None) -> None:
        super().__init__(network, settings)
        from ..networks.fusionnet import build_calibration

        self.cleannet = cleannet
        if cleannet is not None:
            cleannet.eval()
            for p in cleannet.parameters():
                p.requires_grad_(False)
        stages = int(settings['stages'])
        self.calibration = build_calibration() if stages > 1 else None

    def train(self, mode: bool = True) -> FusionObjective:
        super().train(mode)
        if self.cleannet is not None:
            self.cleannet.eval()  # frozen: keep its normalisation statistics fixed
        return self

    def visible(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cleannet is None:
            return batch['clean']
        with torch.no_grad():
            return torch.clamp(self.cleannet(batch['rainy']), 0.0, 1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        out = self.network.forward_train(self.visible(batch), batch['infrared'], stages=int(s['stages']),
                                         calibration=self.calibration)
        terms = losses.fusion_losses(out['fused_y'], out['visible_y'], out['infrared'], out['w_visible'],
                                     out['w_infrared'], ssim_weight=s['ssim_weight'],
                                     intensity_weight=s['intensity_weight'],
                                     gradient_weight=s['gradient_weight'])
        fidelity = torch.stack([losses.illumination_fidelity(i, x)
                                for i, x in zip(out['illuminations'], out['stage_inputs'])]).sum()
        smooth = torch.stack([losses.illumination_smoothness(i, x)
                              for i, x in zip(out['illuminations'], out['stage_inputs'])]).sum()
        if s['visible_weight']:
            # hold the fused luminance near the visible one (brightness, colour, what the visible camera saw)
            # while the gradient term adds the thermal frame's edges: night fusion that neither washes out
            # nor drops the street lights
            held = losses.pixel_loss('mse', out['fused_y'], out['visible_y'])
            terms['fusion_visible'] = s['visible_weight'] * held
        terms['refine_fidelity'] = s['fidelity_weight'] * fidelity
        terms['refine_smooth'] = s['smooth_weight'] * smooth
        if s['refined_weight']:
            # the deployed output is the refined image: hold its luminance to the same fusion objective,
            # otherwise the Retinex division (fused / illumination ~ 1) is free to wash it out
            refined = rgb_to_ycbcr(out['refined'])
            refined_y = refined[:, :1]
            anchored = losses.fusion_losses(refined_y, out['visible_y'], out['infrared'], out['w_visible'],
                                            out['w_infrared'], ssim_weight=s['ssim_weight'],
                                            intensity_weight=s['intensity_weight'],
                                            gradient_weight=s['gradient_weight'])
            terms['refined'] = s['refined_weight'] * torch.stack(list(anchored.values())).sum()
        if s['chroma_weight']:
            # the fused image takes the visible chroma; the per-channel division must not tint it
            visible_chroma = rgb_to_ycbcr(self.visible(batch))[:, 1:]
            terms['refined_chroma'] = s['chroma_weight'] * losses.l1(rgb_to_ycbcr(out['refined'])[:, 1:],
                                                                     visible_chroma)
        return _total(terms)

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        visible = self.visible(batch)
        return {'derained': visible, 'fused': self.network(visible, batch['infrared'])}


class StereoObjective(Objective):
    """StereoIRR: per view ``Charbonnier + ssim_weight (1 - SSIM)``, plus ``consistency_weight`` x L1 between
    the left output and the right output warped by the known disparity (synthetic pairs only)."""

    kind = 'stereo'

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.network.forward_train(batch['rainy'], batch['rainy_right'])
        s = self.settings
        terms = {'charbonnier': losses.charbonnier(out['left'], batch['clean'])
                 + losses.charbonnier(out['right'], batch['clean_right'])}
        if s['ssim_weight']:
            terms['ssim'] = s['ssim_weight'] * (losses.ssim_loss(out['left'], batch['clean'])
                                                + losses.ssim_loss(out['right'], batch['clean_right']))
        if s['consistency_weight'] and 'has_disparity' in batch and bool(batch['has_disparity'].any()):
            known = batch['has_disparity'] > 0
            terms['consistency'] = s['consistency_weight'] * losses.stereo_consistency(
                out['left'][known], out['right'][known], batch['disparity'][known])
        return _total(terms)

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        left, right = self.network(batch['rainy'], batch['rainy_right'])
        return {'left': left, 'right': right}


OBJECTIVES = {'cleannet': CleanNetObjective, 'mspfn': MSPFNObjective, 'rainmer': RainmerObjective,
              'fusionnet': FusionObjective, 'stereoirr': StereoObjective}


def build_objective(network_name: str, network: nn.Module, settings: dict[str, Any],
                    cleannet: nn.Module | None = None) -> Objective:
    """The objective of a network (``cleannet`` only for ``fusionnet``)."""
    if network_name not in OBJECTIVES:
        raise ConfigError(f'no training objective for {network_name!r}')
    # The residual network's last layer is zeroed when ``identity_init`` is set, so the untrained network
    # returns its input (output = input + residual / input - rain) and training starts from the rainy-input
    # quality instead of from noise.
    output_layer = NETWORKS[network_name].output_layer
    if settings.get('identity_init') and output_layer:
        layer = getattr(network, output_layer)
        with torch.no_grad():
            for param in layer.parameters():
                param.zero_()
    if network_name == 'fusionnet':
        return FusionObjective(network, settings, cleannet)
    return OBJECTIVES[network_name](network, settings)
