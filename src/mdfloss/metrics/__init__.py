"""Full-reference image quality metrics that need no learned weights (torch and numpy only).

Modules (import the module you need; this package imports none of them):

- :mod:`mdfloss.metrics.haarpsi`: ``haarpsi(x, y, data_range=1.0, reduction="mean")``, the Haar
  wavelet-based perceptual similarity index (Reisenhofer et al. 2018,
  DOI 10.1016/j.image.2017.11.001). RGB or grey, in (0, 1], higher is better, symmetric.
- :mod:`mdfloss.metrics.dss`: ``dss(x, y, ...)``, the DCT subband similarity index (Balanov et
  al., ICIP 2015, DOI 10.1109/ICIP.2015.7351172). RGB (luminance) or grey, at most 1, higher is
  better, symmetric.
- :mod:`mdfloss.metrics.mdsi`: ``mdsi(x, y, ...)``, the mean deviation similarity index (Nafchi et
  al. 2016, DOI 10.1109/ACCESS.2016.2604042). RGB only, >= 0, **lower is better** (the original
  definition, returned as is; ``HIGHER_IS_BETTER = False``), not symmetric: ``x`` is the
  distorted image, ``y`` the reference.
- :mod:`mdfloss.metrics._colour`: the shared input checks, colour transforms and filters.

Each module has ``HIGHER_IS_BETTER`` and ``PERFECT_VALUE`` (identical images give it exactly).
Inputs: (N, C, H, W) floating tensors in [0, data_range]; float16/bfloat16 are computed in
float32 and return float32; anything wrong raises ``TypeError``/``ValueError`` naming the argument.
All three are differentiable almost everywhere (each module's docstring lists where not).
Checked against piq 0.8 (tests/test_metrics_*.py); the deliberate differences from piq
(MATLAB rounding, no ``eps`` in quotients, MDSI's argument order) are in the module docstrings.

Cost (``benchmarks/iqa_metric_cost.py``, forward only, float32, 1 thread, median of 7, a shared
2-core CPU; ``.venv/bin/python benchmarks/iqa_metric_cost.py``):

=========== ======= ============ ======== ===============
shape       metric  mdfloss ms   piq ms   mdfloss / piq
=========== ======= ============ ======== ===============
1x3x256x256 HaarPSI 10.7         15.3     0.70x
1x3x256x256 DSS     9.7          25.2     0.39x
1x3x256x256 MDSI    18.0         24.3     0.74x
16x3x96x96  HaarPSI 15.9         24.4     0.65x
16x3x96x96  DSS     12.2         26.3     0.46x
16x3x96x96  MDSI    19.3         36.5     0.53x
=========== ======= ============ ======== ===============
"""
