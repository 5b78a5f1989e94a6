"""The report's figures survive one panel and long names: nothing clipped, nothing piled up.

Each figure is drawn with one, two and five batch sizes (one panel to a full row and more) and the
suite's longest function name, and its text is measured where matplotlib put it: every title,
legend entry and colour-bar label lies inside the figure, and none covers another.
"""

from __future__ import annotations

import numpy as np
import pytest

from xentbench import plots

LONG = "sparse_softmax_cross_entropy_with_logits_and_grad"
BACKENDS = ("naive", "numpy", "numba", "tensorflow", "torch", "jax", "numba+out")
CLASSES = [2, 10, 1000, 32000, 128256]


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions make, drawn, instead of saved."""
    figures = []

    def keep(fig, path):
        fig.canvas.draw()
        figures.append(fig)

    monkeypatch.setattr(plots, "_save", keep)
    yield figures
    for fig in figures:
        plots.plt.close(fig)


def boxes(fig, texts):
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text()]


def assert_inside_and_apart(fig, texts):
    """Every text inside the figure (a pixel's tolerance), and no two of them overlapping."""
    found = boxes(fig, texts)
    width, height = fig.canvas.get_width_height()
    for text, box in found:
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, (text, box, width)
    for i, (a, box_a) in enumerate(found):
        for b, box_b in found[i + 1:]:
            assert not box_a.overlaps(box_b), (a, b)


def titles_and_legends(fig):
    texts = [fig._suptitle] + [ax.title for ax in fig.axes]
    for legend in fig.legends:
        texts += legend.get_texts()
    return texts


@pytest.mark.parametrize("batches", [1, 2, 5])
def test_the_throughput_figure_keeps_every_legend_entry_and_its_title(drawn, batches):
    sizes = [1, 32, 256, 4096, 65536][:batches]
    panels = {b: {name: [(c, 1.0 + i + c / 1e5) for c in CLASSES] for i, name in enumerate(BACKENDS)}
              for b in sizes}
    limits = {b: [(c, 50.0) for c in CLASSES] for b in sizes}
    plots.throughput("unused.png", f"throughput, {LONG} (float32)", 4, panels, limits)
    (fig,) = drawn
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(BACKENDS) + ["roofline (this machine)"]
    assert_inside_and_apart(fig, titles_and_legends(fig))


@pytest.mark.parametrize("batches", [1, 2, 5])
def test_the_heat_maps_keep_their_titles_and_colour_bar_labels_apart(drawn, batches):
    sizes = [1, 32, 256, 4096, 65536][:batches]
    rng = np.random.default_rng(batches)
    grids = [(f"numba vs {name}, paired", 2.0 ** rng.uniform(-7, 7, (batches, 2)))
             for name in ("TensorFlow", "faster peer")]
    plots.heatmaps("unused.png", f"paired speed-up, {LONG} (float32)", grids, sizes, [10, 1000])
    (fig,) = drawn
    bar = fig.axes[-1]
    labels = bar.get_yticklabels()
    assert len([t for t in labels if t.get_text()]) >= 2  # the scale is still labelled
    assert_inside_and_apart(fig, titles_and_legends(fig) + labels)
    assert LONG in fig._suptitle.get_text().replace("\n", " ")


@pytest.mark.parametrize("functions", [1, 2, 5])
def test_the_roofline_figure_keeps_its_legend_inside(drawn, functions):
    names = ["sparse", "dense", "sparse_grad", "dense_grad", "softmax"][:functions]
    panels = {n: {b: [(1e6, 1e9), (1e8, 5e8)] for b in ("numba", "numba+out", "tensorflow")} for n in names}
    curves = {n: dict(bandwidth=[(1e5, 2e9), (1e9, 1e9)], exp=3e9) for n in names}
    plots.roofline("unused.png", "achieved throughput and this machine's limit (float32)", panels, curves)
    (fig,) = drawn
    assert_inside_and_apart(fig, titles_and_legends(fig))
