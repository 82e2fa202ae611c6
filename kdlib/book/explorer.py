"""The latent explorer: 2-D projections of stored embeddings, for the static book and for Jupyter.

* :func:`static_explorer` returns self-contained HTML: a plotly figure with a dropdown per model
  and, beside it, the hovered image with its label, the model's and (when known) the humans'
  distributions. plotly.js comes from the page (the book vendors it), never from a CDN.
* :func:`live_explorer` builds ipywidgets controls (model, classes, projection) whose callbacks
  redraw the projection and show the clicked image: it needs a kernel, so it is for Jupyter.
"""
from __future__ import annotations

import base64
import html
import io
import json
import uuid
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # names for annotations only
    import ipywidgets as W
    import plotly.graph_objects as go
    from IPython.display import HTML


__all__ = ["project", "thumbnails", "static_explorer", "live_explorer", "show_plotly", "disagreement_tabs",
           "explorer_points"]


def explorer_points(pred: dict, view: dict, per_class: int, pick: np.ndarray | None = None) -> dict:
    """One model's points for the explorer: test images that are here *and* have a recorded embedding,
    ``per_class`` of each class (:func:`kdlib.runs.compact.embedding_subset` over those), joined on the original
    test indices. ``pick`` (the original indices a first model chose) keeps every model on the same images.

    ``pred``: :meth:`kdlib.runs.store.Run.read_predictions` with embeddings; ``view``: :func:`kdlib.book.rows.heldout_view`
    with images. Returns ``pick``, ``labels``, ``images``, ``human`` (or None), ``embeddings``, ``probs``."""
    from ..runs.compact import embedding_subset

    row_of = {int(i): k for k, i in enumerate(view["indices"])}  # original test index -> row of the view
    image_of = {int(r): k for k, r in enumerate(view["image_rows"])}  # row of the view -> row of the images
    emb_rows = pred["test_embedding_index"]
    if pick is None:
        orig = pred["test_indices"][emb_rows]
        keep = np.flatnonzero([row_of.get(int(i), -1) in image_of for i in orig])
        pick = orig[keep[embedding_subset(pred["test_labels"][emb_rows][keep], per_class)]]
    pos = {int(i): k for k, i in enumerate(pred["test_indices"])}
    emb_pos = {int(pred["test_indices"][e]): k for k, e in enumerate(emb_rows)}
    rows = np.array([pos[int(i)] for i in pick], dtype=np.int64)
    view_rows = [row_of[int(i)] for i in pick]
    return {"pick": pick, "labels": pred["test_labels"][rows], "probs": pred["test_probs"][rows],
            "embeddings": pred["test_embeddings"][[emb_pos[int(i)] for i in pick]].astype(np.float32),
            "images": view["images"][[image_of[r] for r in view_rows]],
            "human": view["human"][view_rows] if view["human"] is not None else None}


def project(embeddings: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, d) -> (N, 2) by ``pca`` or ``tsne`` (sklearn)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(5, len(x) // 4))
                    ).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}; choose 'pca' or 'tsne'")


def thumbnails(images: np.ndarray, scale: int = 3) -> list[str]:
    """uint8 (N, H, W, C) -> PNG data URLs, enlarged ``scale`` times."""
    from PIL import Image

    out = []
    for img in images:
        arr = img[..., 0] if img.shape[-1] == 1 else img
        im = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


def show_plotly(fig: go.Figure, extra_html: str = "") -> HTML:
    """A plotly figure as HTML that uses the page's plotly.js (no CDN, no 4.8 MB per page)."""
    from IPython.display import HTML

    return HTML(fig.to_html(include_plotlyjs=False, full_html=False) + extra_html)


def _fmt_dist(p, classes, k=3):
    order = np.argsort(p)[::-1][:k]
    return ", ".join(f"{classes[i]} {p[i]:.2f}" for i in order)


def static_explorer(models: dict, images: np.ndarray, labels: np.ndarray, classes: list,
                    human: np.ndarray | None = None) -> str:
    """``models``: name -> dict(coords=(N, 2), probs=(N, C)). One trace per (model, class); the
    dropdown shows one model at a time; hovering a point shows its image and distributions."""
    import plotly.graph_objects as go

    thumbs = thumbnails(images)
    fig = go.Figure()
    names = list(models)
    n_cls = len(classes)
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
               "#CCB974", "#64B5CD"]
    for mi, name in enumerate(names):
        coords, probs = models[name]["coords"], models[name]["probs"]
        for c in range(n_cls):
            sel = np.flatnonzero(labels == c)
            if not len(sel):
                continue
            info = []
            for i in sel:
                text = f"label: {classes[c]}<br>model: {_fmt_dist(probs[i], classes)}"
                if human is not None:
                    text += f"<br>humans: {_fmt_dist(human[i], classes)}"
                info.append(text)
            fig.add_trace(go.Scattergl(
                x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=classes[c], visible=mi == 0,
                marker={"size": 5, "color": palette[c % 10]}, legendgroup=classes[c], showlegend=True,
                customdata=np.stack([sel, np.array(info, dtype=object)], axis=1),
                hovertemplate="%{customdata[1]}<extra></extra>"))
    per_model = [sum(1 for c in range(n_cls) if (labels == c).any())] * len(names)
    buttons = []
    for mi, name in enumerate(names):
        visible = [False] * sum(per_model)
        start = sum(per_model[:mi])
        visible[start:start + per_model[mi]] = [True] * per_model[mi]
        buttons.append({"label": name, "method": "update", "args": [{"visible": visible}, {"title": name}]})
    # the menu names the model shown (no separate title for it to cover); the chart fills its column
    for b in buttons:
        b["method"], b["args"] = "restyle", [b["args"][0]]
    fig.update_layout(height=480, autosize=True, margin={"l": 10, "r": 10, "t": 48, "b": 10},
                      updatemenus=[{"buttons": buttons, "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom",
                                    "pad": {"b": 6}, "showactive": True}],
                      xaxis={"visible": False}, yaxis={"visible": False},
                      legend={"itemsizing": "constant", "title": {"text": "class"}})
    div_id = f"kd-explorer-{uuid.uuid4().hex[:8]}"
    fig_html = fig.to_html(include_plotlyjs=False, full_html=False, div_id=div_id, default_width="100%",
                           config={"responsive": True, "displaylogo": False})
    # the image panel comes first in the page (shown on the right by `order`), so that when plotly sizes the
    # chart, its column already has its final width and the chart cannot spread under the panel
    side = (f'<div class="kd-explorer" style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;'
            f'max-width:100%">'
            f'<div style="order:2;flex:0 0 150px;width:150px"><img id="{div_id}-img" alt="hovered image" '
            f'style="width:128px;image-rendering:pixelated;border:1px solid #ccc" src="{thumbs[0]}">'
            f'<div id="{div_id}-txt" style="font-size:12px">hover a point</div></div>'
            f'<div style="order:1;flex:1 1 360px;min-width:0;max-width:100%">{fig_html}</div></div>')
    script = ("<script>(function(){var thumbs=" + json.dumps(thumbs) + ";var gd=document.getElementById('"
              + div_id + "');function hook(){if(!gd||!gd.on){return setTimeout(hook,100);}"
              "if(window.Plotly&&Plotly.Plots){Plotly.Plots.resize(gd);}gd.on('plotly_hover',function(ev){var p=ev.points[0];var i=p.customdata[0];"
              "document.getElementById('" + div_id + "-img').src=thumbs[i];"
              "document.getElementById('" + div_id + "-txt').innerHTML=p.customdata[1];});}hook();})();</script>")
    return side + script


def live_explorer(models: dict, images: np.ndarray, labels: np.ndarray, classes: list, embeddings: dict,
                  human: np.ndarray | None = None, hover: bool = False) -> W.VBox:
    """ipywidgets: pick a model, classes and a projection; see a point's image and distributions.

    ``hover=True`` (live Jupyter, needs ``anywidget``): a plotly ``FigureWidget`` whose hover and
    click callbacks show the point. ``hover=False`` (what the static book saves): a matplotlib
    view and a slider over the shown points, widgets the static HTML manager can render.
    """
    import ipywidgets as W

    if hover:
        return _hover_explorer(models, images, labels, classes, embeddings, human)
    import matplotlib.pyplot as plt

    thumbs = thumbnails(images)
    model_w = W.Dropdown(options=list(models), description="model")
    classes_w = W.SelectMultiple(options=[(c, i) for i, c in enumerate(classes)],
                                 value=tuple(range(min(4, len(classes)))), description="classes", rows=5)
    proj_w = W.ToggleButtons(options=["pca", "tsne"], value="pca", description="projection")
    point_w = W.IntSlider(min=0, max=0, description="point")
    plot_w = W.Output()
    info_w = W.HTML()
    state = {}

    def redraw(*_):
        keep = np.flatnonzero(np.isin(labels, list(classes_w.value)))
        state["idx"] = keep
        state["coords"] = project(embeddings[model_w.value][keep], proj_w.value) if len(keep) > 2 else np.zeros((len(keep), 2))
        point_w.max = max(0, len(keep) - 1)
        show()

    def show(*_):
        idx, coords = state["idx"], state["coords"]
        plot_w.clear_output(wait=True)
        with plot_w:
            fig, ax = plt.subplots(figsize=(5, 4))
            for c in classes_w.value:
                sel = labels[idx] == c
                ax.scatter(coords[sel, 0], coords[sel, 1], s=8, label=classes[c])
            if len(idx):
                k = min(point_w.value, len(idx) - 1)
                ax.scatter(coords[k, 0], coords[k, 1], s=120, facecolors="none", edgecolors="black")
            ax.set_xticks([]), ax.set_yticks([])
            ax.legend(fontsize=7)
            ax.set_title(f"{model_w.value} ({proj_w.value})")
            plt.show()
        if len(idx):
            i = int(idx[min(point_w.value, len(idx) - 1)])
            text = (f"<img src='{thumbs[i]}' width=96><br>label: {html.escape(classes[labels[i]])}<br>model: "
                    f"{_fmt_dist(models[model_w.value]['probs'][i], classes)}")
            if human is not None:
                text += f"<br>humans: {_fmt_dist(human[i], classes)}"
            info_w.value = text

    for w in (model_w, classes_w, proj_w):
        w.observe(redraw, names="value")
    point_w.observe(show, names="value")
    redraw()
    return W.VBox([W.HBox([model_w, proj_w]), W.HBox([classes_w, point_w]), W.HBox([plot_w, info_w])])


def _hover_explorer(models, images, labels, classes, embeddings, human):
    import ipywidgets as W
    import plotly.graph_objects as go

    thumbs = thumbnails(images)
    model_w = W.Dropdown(options=list(models), description="model")
    classes_w = W.SelectMultiple(options=[(c, i) for i, c in enumerate(classes)],
                                 value=tuple(range(min(4, len(classes)))), description="classes", rows=5)
    proj_w = W.ToggleButtons(options=["pca", "tsne"], value="pca", description="projection")
    info_w = W.HTML("hover or click a point")

    def traces():
        keep = np.flatnonzero(np.isin(labels, list(classes_w.value)))
        coords = project(embeddings[model_w.value][keep], proj_w.value)
        return [go.Scatter(x=coords[labels[keep] == c, 0], y=coords[labels[keep] == c, 1], mode="markers",
                           name=classes[c], customdata=keep[labels[keep] == c], marker={"size": 6})
                for c in classes_w.value]

    # created with its data, so a saved notebook reopens with the plot drawn
    fig = go.FigureWidget(data=traces(), layout={"height": 420, "margin": {"l": 10, "r": 10, "t": 30, "b": 10}})

    def point(trace, points, _state=None):
        if not points.point_inds:
            return
        i = int(trace.customdata[points.point_inds[0]])
        text = (f"<img src='{thumbs[i]}' width=96><br>label: {html.escape(classes[labels[i]])}<br>model: "
                f"{_fmt_dist(models[model_w.value]['probs'][i], classes)}")
        if human is not None:
            text += f"<br>humans: {_fmt_dist(human[i], classes)}"
        info_w.value = text

    def hook():
        for trace in fig.data:
            trace.on_hover(point)
            trace.on_click(point)

    def redraw(*_):
        new = traces()
        with fig.batch_update():
            fig.data = []
            for t in new:
                fig.add_trace(t)
        hook()

    for w in (model_w, classes_w, proj_w):
        w.observe(redraw, names="value")
    hook()
    return W.VBox([W.HBox([model_w, proj_w]), classes_w, W.HBox([fig, info_w])])


def disagreement_tabs(models: dict, images: np.ndarray, labels: np.ndarray, classes: list,
                      human: np.ndarray | None = None, k: int = 8) -> W.Tab:
    """An ipywidgets ``Tab``, one page per model, each showing the ``k`` images on which the model and the
    humans disagree most (KL(human ‖ model)), or, without human labels, its ``k`` most confident mistakes.
    Switching tabs needs no kernel, so it works in the static book."""
    import ipywidgets as W

    from ..blocks.metrics import kl_per_image

    thumbs = thumbnails(images)
    pages, names = [], []
    for name, m in models.items():
        p = np.asarray(m["probs"], dtype=np.float64)
        if human is not None:
            score = kl_per_image(p, np.asarray(human, dtype=np.float64))
            what = "KL(human ‖ model)"
        else:
            wrong = p.argmax(1) != labels
            score = np.where(wrong, p.max(1), -1.0)
            what = "confidence of the mistake"
        order = np.argsort(score)[::-1][:k]
        cells = []
        for i in order:
            text = (f"<b>{html.escape(classes[labels[i]])}</b><br>model: {_fmt_dist(p[i], classes, 2)}"
                    + (f"<br>humans: {_fmt_dist(human[i], classes, 2)}" if human is not None else "")
                    + f"<br>{what}: {score[i]:.2f}")
            cells.append(f'<div style="width:150px;font-size:11px"><img src="{thumbs[i]}" width="96" '
                         f'style="image-rendering:pixelated"><br>{text}</div>')
        pages.append(W.HTML('<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(cells) + "</div>"))
        names.append(name)
    tab = W.Tab(children=pages)
    for i, name in enumerate(names):
        tab.set_title(i, name)
    return tab
