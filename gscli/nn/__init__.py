"""Runtime: apply gscli operators inside torch models (torch, numpy and h5py only; never escnn).

Typical use, with the operators shipped with gscli or files in the store (``operators/`` or ``$GSCLI_STORE``)::

    from gscli.nn import GroupDownsample

    down = GroupDownsample.from_catalog("D12-D6")   # GroupDownsample(group=D12, subgroup=D6, rate=2, ...)
    y = down(x)                                     # (batch, C*24, *spatial) -> (batch, C*12, *spatial)
    x_back = down.upsample(y)

Continuous groups (docs/continuous.md): :class:`ContinuousDownsample`, :class:`ContinuousUpsample` and
:class:`SubgroupPointwise` take band-limited fields of SO(2), O(2), SO(3), O(3) to a finite subgroup and back.

See :class:`GroupDownsample` for shapes, dtypes, canonicalization, ``state_dict`` and escnn use.
"""

from gscli.nn._continuous import ContinuousDownsample, ContinuousUpsample, SubgroupPointwise
from gscli.nn._layer import FLOAT_DTYPES, Canonicalized, GroupDownsample, InputError
from gscli.nn._source import OperatorBuiltWarning, StoreFileIgnoredWarning

__all__ = ["GroupDownsample", "Canonicalized", "InputError", "OperatorBuiltWarning", "StoreFileIgnoredWarning",
           "FLOAT_DTYPES", "ContinuousDownsample", "ContinuousUpsample", "SubgroupPointwise"]
