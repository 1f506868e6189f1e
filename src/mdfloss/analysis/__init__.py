"""What a loss penalises: ``mdfloss analyze ...``.

* :mod:`.probes`: distortions (noise, blur, grating, contrast, brightness, JPEG) set to a
  target PSNR;
* :mod:`.sensitivity`: every loss evaluated on every image's matched-PSNR distortions, and the
  per-unit-MSE ratio table;
* :mod:`.report`: the CSV, the figure and the Markdown tables (blocks of :mod:`mdfloss.document`);
* :mod:`.iqa_data`: quality datasets with human scores (TID2013, KADID-10k, CSV, a study) and
  the statistics (SROCC, KROCC, logistic PLCC, bootstrap intervals);
* :mod:`.iqa`: losses and metrics as quality predictors, and their report;
* :mod:`.command`: the parsers of ``mdfloss analyze sensitivity``, ``manifold``, ``gradients`` and
  ``iqa``; :mod:`.runs`: one module per analysis with its ``run``.

The losses come from :mod:`mdfloss.losses`.
"""
