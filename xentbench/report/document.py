"""The report as a document: a list of blocks, rendered once as Markdown and once as HTML.

The HTML is self-contained: each image block is embedded as a ``data:`` URI,
and the Markdown's inline code, bold and links are carried over.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).strip().replace(" ", "-")


@dataclass
class Doc:
    """The report as a list of blocks, rendered once as Markdown and once as HTML."""

    blocks: list = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, header, rows, numeric_from: int = 1) -> None:
        """Cells are strings; columns from ``numeric_from`` on are right-aligned."""
        self.blocks.append(("table", [str(c) for c in header], [[str(c) for c in r] for r in rows],
                            numeric_from))

    def img(self, filename: str, alt: str) -> None:
        self.blocks.append(("img", filename, alt))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def contents(self, after: int) -> None:
        """A line of links to the level-2 headings, inserted after block ``after``."""
        titles = [b[2] for b in self.blocks if b[0] == "h" and b[1] == 2]
        self.blocks.insert(after, ("p", "Contents: " + " · ".join(f"[{t}](#{anchor(t)})" for t in titles)))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                _, header, rows, k = block
                esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
                lines = ["| " + " | ".join(esc[0]) + " |",
                         "|" + "|".join("---:" if i >= k else ":---" for i in range(len(header))) + "|"]
                lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
                out.append("\n".join(lines))
            elif kind == "img":
                out.append(f"![{block[2]}]({block[1]})")
            elif kind == "pre":
                out.append("```\n" + block[1].rstrip("\n") + "\n```")
        return "\n\n".join(out) + "\n"

    def html(self, folder: Path, title: str) -> str:
        body, ids = [], set()
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                tag, n = anchor(block[2]), 1
                while tag in ids:  # GitHub's rule for repeated headings: -1, -2, ...
                    tag, n = f"{anchor(block[2])}-{n}", n + 1
                ids.add(tag)
                body.append(f'<h{block[1]} id="{tag}">{_inline_html(block[2])}</h{block[1]}>')
            elif kind == "p":
                body.append(f"<p>{_inline_html(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                _, header, rows, k = block

                def cells(row, tag):
                    return "".join(f'<{tag}{" class=n" if i >= k else ""}>{_inline_html(c)}</{tag}>'
                                   for i, c in enumerate(row))
                body.append("<table><thead><tr>" + cells(header, "th") + "</tr></thead><tbody>"
                            + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows) + "</tbody></table>")
            elif kind == "img":
                data = base64.b64encode((folder / block[1]).read_bytes()).decode("ascii")
                body.append(f'<p><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}"></p>')
            elif kind == "pre":
                body.append(f"<pre>{html.escape(block[1])}</pre>")
        css = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
               "line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.88em}"
               "th,td{border:1px solid #ccc;padding:.2em .5em}th{background:#f3f3f3}td.n,th.n{text-align:right;"
               "font-variant-numeric:tabular-nums}img{max-width:100%}code,pre{background:#f6f6f6}"
               "pre{padding:.6em;overflow-x:auto;font-size:.8em}")
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{css}</style></head><body>\n"
                + "\n".join(body) + "\n</body></html>\n")

