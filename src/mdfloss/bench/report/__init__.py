"""``report.md`` and ``report.html`` from an output folder's ``manifest.json`` and its runs' results.

Per experiment (task + model): the runs; a Table-3-style table of the mean and the worst-5 % value of every
loss per dataset and metric, best in bold, second in italics (red and blue in the HTML, as the paper);
one-tailed paired t-tests of each reference loss (``report.references``, by default the labels starting
with ``mdf``) against the others; violin plots; validation PSNR during training; side-by-side crops.

* :mod:`.stats`: the statistics; :mod:`.plots` and :mod:`.crops`: the figures;
* :mod:`.page`: the page as :mod:`mdfloss.document` blocks, rendered here to both formats.
"""

from __future__ import annotations

from pathlib import Path

from ..._files import write_atomically
from ...document import to_html, to_markdown
from ..manifest import read_manifest
from .page import TITLE, report_page


def build_report(out: str | Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``report_files/`` in ``out``; returns both paths.

    The report lists every command that trained into ``out`` (``manifest.json``'s ``commands``).
    """
    out = Path(out)
    manifest = read_manifest(out)
    if not manifest["experiments"]:
        raise FileNotFoundError(f"{out / 'manifest.json'}: no benchmark results here (run mdfloss bench first)")
    blocks = report_page(out, manifest)
    md_text = to_markdown(blocks) + "\n"  # report.md has always ended with a blank line
    html_text = to_html(blocks, TITLE)
    md_path, html_path = out / "report.md", out / "report.html"
    write_atomically(md_path, lambda tmp: Path(tmp).write_text(md_text, encoding="utf-8"))
    write_atomically(html_path, lambda tmp: Path(tmp).write_text(html_text, encoding="utf-8"))
    return md_path, html_path
