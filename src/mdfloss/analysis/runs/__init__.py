"""One module per ``mdfloss analyze`` analysis, each with ``run(args) -> int``: the workflow from
parsed arguments to written files (:mod:`.sensitivity`, :mod:`.manifold`, :mod:`.gradients`,
:mod:`.iqa`). The parsers are in :mod:`mdfloss.analysis.command`."""
