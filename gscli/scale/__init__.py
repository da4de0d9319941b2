"""Scale: anti-aliased resolution change on periodic image grids (DESIGN §7); torch and numpy only."""

from gscli.scale._resample import band_limit, resample, resample_matrix

__all__ = ["band_limit", "resample", "resample_matrix"]
