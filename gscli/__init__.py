"""gscli: exact group downsampling operators with equivariant anti-aliasing for G-CNNs.

The build side (``gscli.build``) needs escnn; reading files (``gscli.fileformat``), checking them
(``gscli.checks``) and applying them need only numpy, h5py and torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
