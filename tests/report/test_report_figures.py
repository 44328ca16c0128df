"""Figure layout: a curve figure's title and legend never cover each other, whatever their lengths."""
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from simulator.report.figures import Line, curves

TITLE = ("n=51, f=12, declared f=12, lr=0.5, momentum_at=update, nesterov=True; dataset=fashionmnist, "
         "model=simples-full, heterogeneity=iid, batch_size=83, momentum=0.9, steps=300")


@pytest.mark.parametrize("labels, attacks", [
    (["bulyan", "median", "multikrum(neighbours=n-f-1,squared=false,m=37)", "trmean"], ["alie(z=1.5)", "ipm"]),
    (["average", "krum"], ["alie", "ipm", "none", "gaussian"]),
    (["bucketing(s=2)>geomed(nu=0.1,max_iter=8,tol=0,start=zero)", "cclip(iters=3)"], ["ipm"]),
])
def test_the_title_stays_inside_the_figure_and_clear_of_the_legend(labels, attacks):
    steps = np.arange(0, 50, 5)
    panels = {a: [Line(label, steps, np.random.default_rng(0).random((2, len(steps)))) for label in labels]
              for a in attacks}
    fig = curves(panels, title=TITLE, ylabel="test accuracy")
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)  # the suptitle as drawn (matplotlib has no public getter)
    legend = fig.legends[0].get_window_extent(renderer)
    assert not title.overlaps(legend)
    assert title.x0 >= fig.bbox.x0 and title.x1 <= fig.bbox.x1


def test_png_figures_are_palette_images_and_pdf_figures_are_left_as_drawn(tmp_path):
    from PIL import Image

    from simulator.report.figures import save_figure

    steps = np.arange(0, 50, 5)
    fig = curves({"ipm": [Line("median", steps, np.full((2, len(steps)), 0.5))]}, title="t", ylabel="accuracy")
    png, pdf = save_figure(fig, tmp_path / "c")
    assert Image.open(png).mode == "P"
    assert pdf.read_bytes().startswith(b"%PDF")


def test_a_heatmap_title_stays_inside_the_figure_with_long_row_labels():
    from simulator.report.figures import heatmap

    rows = ["multikrum(neighbours=n-f-1,squared=false,m=25)", "median"]
    fig = heatmap(np.full((2, 2), 0.5), rows, ["f=12", "f=24"], title="Worst case over attacks; " + TITLE,
                  xlabel="attackers (f)", label="test accuracy")
    FigureCanvasAgg(fig).draw()
    title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1
