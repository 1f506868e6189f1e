"""``mdfloss study``: the paper's pairwise-comparison experiment (section 4.3, Figs. 5 and 6).

A study is one SQLite file (:mod:`.store`) plus a folder of images. Observers compare two
reconstructions against their reference in a browser (the app :mod:`.server`, on the production
server of :mod:`.serving`, within the request limits of :mod:`.bounds`); the pairs come from a
full design or from active sampling (:mod:`.design`); the answers are scaled to JND units by
Thurstone Case V maximum likelihood (:mod:`.scaling`) and plotted (:mod:`.plots`), with the
bench's PSNRs for Fig. 6 (:mod:`.bench_psnr`).

Nothing here is imported by ``import mdfloss``: the web framework and scipy load only when a
study module is used.
"""
