"""Runtime: apply gscli operators inside torch models (torch, numpy and h5py only; never escnn).

>>> from gscli.nn import GroupDownsample
>>> layer = GroupDownsample.from_catalog("D12-D6")   # doctest: +SKIP
>>> layer                                             # doctest: +SKIP
GroupDownsample(group=D12, subgroup=D6, rate=2, source='operators/D12-D6.h5')

See :class:`GroupDownsample` for shapes, dtypes, canonicalization, ``state_dict`` and escnn use.
"""

from gscli.nn._layer import FLOAT_DTYPES, Canonicalized, GroupDownsample, InputError
from gscli.nn._source import OperatorBuiltWarning

__all__ = ["GroupDownsample", "Canonicalized", "InputError", "OperatorBuiltWarning", "FLOAT_DTYPES"]
