"""Full-reference image quality metrics (torch and numpy only; import the module you need).

* :mod:`~mdfloss.metrics.image`: PSNR, PSNR-Y, SSIM, MS-SSIM, and :class:`ImageMetrics`, every
  metric of one restored image as the benchmark measures it (8-bit output, border cropped);
* :mod:`~mdfloss.metrics.haarpsi`: HaarPSI, the Haar wavelet-based perceptual similarity index
  (Reisenhofer et al. 2018, DOI 10.1016/j.image.2017.11.001), in (0, 1], higher is better;
* :mod:`~mdfloss.metrics.dss`: DSS, the DCT subband similarity index (Balanov et al., ICIP 2015,
  DOI 10.1109/ICIP.2015.7351172), at most 1, higher is better;
* :mod:`~mdfloss.metrics.mdsi`: MDSI, the mean deviation similarity index (Nafchi et al. 2016,
  DOI 10.1109/ACCESS.2016.2604042), >= 0, **lower is better** (the original definition); not
  symmetric: ``x`` is the distorted image, ``y`` the reference;
* :mod:`~mdfloss.metrics._colour`: their shared input checks and colour transforms.

Each of haarpsi, dss and mdsi has ``HIGHER_IS_BETTER`` and ``PERFECT_VALUE`` (identical images give
it exactly), takes (N, C, H, W) floating tensors in [0, data_range] (float16/bfloat16 computed in
float32) and is checked against piq 0.8 in tests/test_metrics_*.py; the deliberate differences
from piq (MATLAB rounding, MDSI's argument order) are in the module docstrings. Their cost against
piq's: benchmarks/README.md.

The losses (:mod:`mdfloss.losses`) and the metrics share their formulas through
:mod:`mdfloss.functional`; neither depends on the other.
"""
