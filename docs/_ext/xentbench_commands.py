"""``{xentbench-commands}``: the help of every ``xentbench`` command, as the parser prints it.

The reference is made from the parser itself (``xentbench.cli.build_parser``), so that it
cannot drift from the commands.
"""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from xentbench import cli


class Commands(SphinxDirective):
    """A section per sub-command: its ``--help`` as a literal block."""

    def run(self):
        parser, commands = cli.build_parser()
        found = [nodes.literal_block(text=parser.format_help())]
        for name, (sub, _) in commands.items():
            section = nodes.section(ids=[f"xentbench-{name}"], names=[f"xentbench {name}"])
            section += nodes.title(text=f"xentbench {name}")
            section += nodes.literal_block(text=sub.format_help())
            found.append(section)
        return found


def setup(app):
    app.add_directive("xentbench-commands", Commands)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
