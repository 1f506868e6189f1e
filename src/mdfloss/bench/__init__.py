"""The restoration benchmark, ``mdfloss bench``: the same network trained once per loss, tested, reported.

Each module imports only modules listed before it (nothing reaches back to what drives it):

* :mod:`.degradations`, :mod:`.models`, :mod:`.data`: the tasks' degradations, the networks
  (EDSR, SRResNet, DnCNN, ESRGAN's RRDB network and discriminator), training patches and
  evaluation images;
* :mod:`.plugins`: a user's own loss, network and degradation (``package.module:attribute``);
* :mod:`.distributed`: the process's place (DDP rank, device) and clean stops on signals;
* :mod:`.convergence`: when a run has converged (the slope of its validation PSNR);
* :mod:`.config`: experiment configs (defaults, built-in YAML, presets, ``--set``), loss labels
  and the runs they make (losses x repeats);
* :mod:`.evaluate`: testing a network (8-bit outputs, every metric of :mod:`mdfloss.metrics.image`);
* :mod:`.manifest`: the folder's record, ``manifest.json`` and ``results.csv`` (their only owner);
* :mod:`.run_folder`: a run's folder (finished, started or new) and runs taken over from
  another benchmark folder (``--reuse``);
* :mod:`.fit`: training one network with one loss (optimizer, schedule, validation, checkpoints,
  convergence);
* :mod:`.gan`: adversarial training (ESRGAN's recipe: L1 pre-training, then content loss + L1 +
  relativistic GAN loss against a patch discriminator), the trained discriminator's file;
* :mod:`.scale_match`: scale-matched losses (``A@B``), the constant and its file;
* :mod:`.experiment`: the assembly of an experiment (folders, data, losses, network, metrics);
* :mod:`.runner`: the run loop of one experiment; :mod:`.parallel`: its runs in N processes;
* :mod:`.estimate`: a few timed steps of the trainer's own ``step``, scaled to the whole run;
* :mod:`.report`: statistics, plots, crops and the page (``report.md``, ``report.html``);
* :mod:`.compare`: losses of different benchmark folders against each other;
* :mod:`.command`: the ``mdfloss bench`` command.

The losses come from :mod:`mdfloss.losses`, the metrics from :mod:`mdfloss.metrics`.
"""
