"""The document renderers: Markdown and HTML of every block, escaping, rank marks, image paths."""

from __future__ import annotations

from mdfloss.document import (
    Bullets,
    Cell,
    Code,
    CodeBlock,
    Details,
    Heading,
    Image,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)


def _body(page: str) -> str:
    return page.split("<body>\n", 1)[1].rsplit("\n</body>", 1)[0]


def test_headings_paragraphs_and_code_blocks():
    blocks = [Heading(1, "Title"), Heading(3, "A & B"), Paragraph("run ", Code("x < y"), " now"),
              CodeBlock(["a --b", "c"]), Bullets(["one", "t<wo"])]
    assert to_markdown(blocks) == "# Title\n\n### A & B\n\nrun `x < y` now\n\n```\na --b\nc\n```\n\n- one\n- t<wo\n"
    assert _body(to_html(blocks, "T")).splitlines() == [
        "<h1>Title</h1>", "<h3>A &amp; B</h3>", "<p>run <code>x &lt; y</code> now</p>",
        "<pre>a --b", "c</pre>", "<ul><li>one</li><li>t&lt;wo</li></ul>",
    ]


def test_the_page_title_is_escaped():
    assert "<title>a &lt;b&gt; &amp; c</title>" in to_html([], "a <b> & c")


def test_table_cells_escape_pipes_in_markdown_and_markup_in_html():
    table = Table(["name", "a|b"], [["x<y & z", Cell("p|q")], [Cell(Code("c|d")), "<i>"]], left=1)
    assert to_markdown([table]) == (
        "| name | a\\|b |\n|---|---|\n| x<y & z | p\\|q |\n| `c\\|d` | <i> |\n"
    )
    assert _body(to_html([table], "t")).splitlines() == [
        "<table><tr><th class='left'>name</th><th>a|b</th></tr>",
        "<tr><td class='left'>x&lt;y &amp; z</td><td>p|q</td></tr>",
        "<tr><td class='left'><code>c|d</code></td><td>&lt;i&gt;</td></tr>",
        "</table>",
    ]


def test_rank_marks_bold_the_best_and_italicise_the_second():
    table = Table(["a", "b", "c"], [[Cell("1.5", 1), Cell("1.2", 2), Cell("0.9")]])
    assert to_markdown([table]).splitlines()[-1] == "| **1.5** | _1.2_ | 0.9 |"
    assert "<tr><td class='best'>1.5</td><td class='second'>1.2</td><td>0.9</td></tr>" in to_html([table], "t")


def test_images_keep_their_relative_paths():
    blocks = [Image("report_files/denoise-dncnn/violin-psnr.png", "violin <psnr>")]
    assert to_markdown(blocks) == "![violin <psnr>](report_files/denoise-dncnn/violin-psnr.png)\n"
    assert _body(to_html(blocks, "t")) == (
        '<p><img class="plot" src="report_files/denoise-dncnn/violin-psnr.png" alt="violin &lt;psnr&gt;"></p>'
    )


def test_image_cells_are_thumbnails_linking_to_the_file():
    table = Table(["x", "y"], [[Cell(image="r/a&b.png"), Cell()]])
    assert to_markdown([table]).splitlines()[-1] == "| [![](r/a&b.png)](r/a&b.png) |  |"
    assert ('<td><a href="r/a&amp;b.png"><img class="thumb" src="r/a&amp;b.png" alt=""></a></td><td></td>'
            in to_html([table], "t"))


def test_details_are_html_only():
    blocks = [Paragraph("before"), Details("All <x>", Table(["h"], [["v"]])), Paragraph("after")]
    assert to_markdown(blocks) == "before\n\nafter\n"
    assert _body(to_html(blocks, "t")).splitlines() == [
        "<p>before</p>", "<details><summary>All &lt;x&gt;</summary><table><tr><th>h</th></tr>",
        "<tr><td>v</td></tr>", "</table></details>", "<p>after</p>",
    ]
