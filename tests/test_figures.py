"""The book's figures state what they must show (kdlib.book.figures); these check it on the drawn objects."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kdlib.book.figures import matrix_figure, short_class_names  # noqa: E402

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_the_matrices_of_one_figure_share_one_colour_scale_and_one_labelled_bar():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.1, (10, 10))
    b = rng.uniform(0.05, 0.4, (10, 10))  # another range: its own scale would hide the difference
    np.fill_diagonal(a, np.nan)
    fig = matrix_figure({"a": a, "b": b}, CLASSES, "viridis", "mean probability", "t")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    expect = (np.nanmin([np.nanmin(a), b.min()]), max(np.nanmax(a), b.max()))
    for im in images:
        assert im.get_clim() == pytest.approx(expect)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "mean probability"
    # readable tick labels: 8 pt, whole names up to 8 characters
    ticks = fig.axes[0].get_xticklabels()
    assert {t.get_fontsize() for t in ticks} == {8.0}
    assert [t.get_text() for t in ticks] == short_class_names(CLASSES) and "airplane" in short_class_names(CLASSES)
    plt.close(fig)


def test_a_figure_of_nothing_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        matrix_figure({}, CLASSES, "viridis", "x", "t")
    with pytest.raises(ValueError, match="NaN"):
        matrix_figure({"a": np.full((10, 10), np.nan)}, CLASSES, "viridis", "x", "t")
