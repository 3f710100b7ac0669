"""snnkit.attacks: adversarial robustness of spiking networks.

After Lun et al. (CVPR 2025), "Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via
Breaking Invisible Surrogate Gradients":

- :func:`pdsg` swaps every neuron's surrogate for the potential-dependent surrogate gradient (snnkit and
  SpikingJelly 2.0 neurons), :func:`swap_surrogate` for any fixed one; both restore the victim on exit;
- :func:`fgsm`, :func:`pgd`: L-inf gradient attacks on the CE of time-averaged logits;
- :func:`sda`: the sparse dynamic attack on binary event frames (:class:`SDAResult`: ``adversarial``, ``l0``,
  ``success``);
- :func:`evaluate`: clean accuracy, ASR, L0 statistics and time per sample of named attacks (:data:`ATTACKS`) on
  a loader; ``snnkit attack runs/<run>`` runs it on a trained checkpoint.

Example::

    from snnkit import attacks
    with attacks.pdsg(model):
        x_adv = attacks.pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=10)
    result = attacks.sda(model, x_binary, y, k_init=10, max_iter=500)
"""

from .evaluate import (ATTACKS, AttackSettings, AttackSpec, Binarised, RobustnessTable, attack_run, evaluate, load_run,
                       plot_frames, save_table)
from .gradient import fgsm, pgd
from .model import attack_mode, spiking_neurons
from .pdsg import SpikingJellyPDSG, pdsg, swap_surrogate
from .sda import SDAResult, cw_margin, sda

__all__ = [
    "ATTACKS",
    "AttackSettings",
    "AttackSpec",
    "Binarised",
    "RobustnessTable",
    "SDAResult",
    "SpikingJellyPDSG",
    "attack_mode",
    "attack_run",
    "cw_margin",
    "evaluate",
    "fgsm",
    "load_run",
    "pdsg",
    "pgd",
    "plot_frames",
    "save_table",
    "sda",
    "spiking_neurons",
    "swap_surrogate",
]
