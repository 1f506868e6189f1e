"""Full-reference image quality metrics (higher is better unless a metric says otherwise).

* :mod:`~mdfloss.metrics.image`: PSNR, PSNR-Y, SSIM, MS-SSIM, and :class:`ImageMetrics`, every
  metric of one restored image as the benchmark measures it (8-bit output, border cropped).

The losses (:mod:`mdfloss.losses`) and the metrics share their formulas through
:mod:`mdfloss.functional`; neither depends on the other.
"""
