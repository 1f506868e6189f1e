"""What a loss penalises: ``mdfloss analyze ...``.

* :mod:`.probes`: distortions (noise, blur, grating, contrast, brightness, JPEG) set to a
  target PSNR;
* :mod:`.sensitivity`: every loss evaluated on every image's matched-PSNR distortions, and the
  per-unit-MSE ratio table;
* :mod:`.report`: the CSV, the figure and the Markdown tables (blocks of :mod:`mdfloss.document`);
* :mod:`.command`: the ``mdfloss analyze sensitivity`` command.

The losses come from :mod:`mdfloss.losses`.
"""
