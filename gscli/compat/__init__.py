"""Drop-in replacements for the Group_Sampling research code's ``SubgroupDownsample`` and ``get_model``.

Users of that code switch by changing one import::

    # from gsampling.layers.downsampling import SubgroupDownsample
    from gscli.compat import SubgroupDownsample
    # from models.model_handler import get_model
    from gscli.compat import get_model

Both accept the research code's keyword arguments with its names and defaults and keep its shapes
and return conventions (``forward`` returns ``(out, canonicalization_element)``; ``upsample``).
Behind them are gscli's exact operators (:class:`gscli.nn.GroupDownsample`, read from the operator
store and built there on demand) and gscli's G-CNN (:mod:`gscli.models`).

What changes (details and the full table: ``docs/migrating.md``):

- ``subsampling_factor`` is the index |G|/|H| of the subgroup, for every pair of group types; the
  subgroup is the one gscli's rule picks among the copies of that type (least aliasing). Where the
  research code's rule gives another copy or another subgroup (D12 -> D6: another reflection axis;
  octahedral -> cycle: always the 4-fold rotations about z, reported with order 6), gscli follows
  the mathematical meaning and says so once in a :class:`CompatWarning`.
- A request the research code would silently turn into a set of elements that is not a subgroup
  (e.g. dihedral -> cycle with an odd factor) is a :class:`~gscli.errors.SubgroupError` naming the
  value and the factors that exist.
- The anti-aliasing is solved exactly, not optimised: optimiser keywords (``iterations``,
  ``smoothness_loss_weight``, ``mode``, ...) are accepted and reported once as unused in an
  :class:`UnusedKeywordWarning`. Unknown keywords raise ``TypeError``, as Python does.
"""

from gscli.compat._layer import (
    GROUP_TYPES,
    OPTIMISER_KEYWORDS,
    SUBGROUP_TYPES,
    CompatWarning,
    SubgroupDownsample,
    Translation,
    UnusedKeywordWarning,
    operator_for,
)
from gscli.compat._model import get_model

__all__ = [
    "SubgroupDownsample",
    "get_model",
    "operator_for",
    "Translation",
    "CompatWarning",
    "UnusedKeywordWarning",
    "GROUP_TYPES",
    "SUBGROUP_TYPES",
    "OPTIMISER_KEYWORDS",
]
