"""Seed images made rather than photographed: ``mdfloss seed synth`` (the paper's Fig. 7 ablation).

* :mod:`~mdfloss.seeds.synthetic`: pink noise, contrast rings, a photo's pyramid permutation;
* :mod:`~mdfloss.seeds.command`: the ``mdfloss seed`` command.

Loading a seed image and building its pyramid for training is :mod:`mdfloss.train.seed`.
"""
