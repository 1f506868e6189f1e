"""The paper's ablations, one command each: ``mdfloss ablate seeds|seed-count|scales|task``.

* :mod:`.plans`: what an ablation trains (seeds, losses) and the bench config it runs;
* :mod:`.steps`: making the seeds, training the losses, writing the config (each resumable);
* :mod:`.command`: the ``mdfloss ablate`` command.
"""
