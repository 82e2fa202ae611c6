"""Metrics of the paper, on whole evaluation sets: arrays of probabilities in, numbers out.

Every function takes numpy arrays or torch tensors of *probabilities* (rows sum to 1), never
logits, and integer labels. Definitions: the README's *Conventions* and the book's Methods chapter; where the
paper's code differs (per-batch F1, 10-bin ECE, class-averaged KL with wrong denominators) the
book's audit chapter says how.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # names for annotations only
    from numpy.typing import ArrayLike


__all__ = ["kl_per_image", "classification_metrics", "ece", "adaptive_ece", "softmax_rows", "reliability_curve", "kl_to_human",
           "class_kl_to_human", "class_kl_matrix", "class_separability", "class_discrimination", "mean_confusion", "agreement",
           "teacher_student_kl", "MIN_PROB"]


MIN_PROB = 1e-12  # model probabilities are floored here inside logs, so a float32 underflow is not +inf


def _np(a, dtype=None):
    if hasattr(a, "detach"):
        a = a.detach().float().cpu().numpy() if a.is_floating_point() else a.detach().cpu().numpy()
    a = np.asarray(a)
    return a.astype(dtype) if dtype is not None else a


def _probs(probs, name="probs"):
    p = _np(probs, np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, C) array of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < -1e-6:
        raise ValueError(f"{name} must be finite and non-negative (pass softmax outputs, not logits)")
    rows = p.sum(axis=1)
    if np.abs(rows - 1).max() > 1e-3:
        raise ValueError(
            f"{name} rows must sum to 1 (max deviation {np.abs(rows - 1).max():.3g}); "
            f"pass softmax probabilities, not logits"
        )
    return np.clip(p, 0.0, None)


def _labels(labels, n, num_classes):
    y = _np(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must be a 1-D array of length {n} (one per row of probs), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("labels must be integer class indices")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got min {y.min()}, max {y.max()}")
    return y.astype(np.int64)


def _prob_and_labels(probs, labels):
    p = _probs(probs)
    return p, _labels(labels, p.shape[0], p.shape[1])


# --------------------------------------------------------------------------- classification
def classification_metrics(probs: ArrayLike, labels: ArrayLike) -> dict:
    """Accuracy, macro precision/recall/F1 over the whole set (sklearn's definitions, with
    zero_division=0), and the mean negative log-likelihood of the true class.

    The NLL floors the true class's probability at ``MIN_PROB`` (1e-12): a confidently wrong image
    costs at most -log(1e-12) = 27.6 nats instead of +inf when float32 underflows to 0. Every NLL in
    the book carries this floor."""
    from sklearn.metrics import precision_recall_fscore_support

    p, y = _prob_and_labels(probs, labels)
    pred = p.argmax(axis=1)
    # macro average over the labels present in y or pred; a class never predicted has precision 0
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    nll = -np.log(np.maximum(p[np.arange(len(y)), y], MIN_PROB)).mean()
    return {
        "accuracy": float((pred == y).mean()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "nll": float(nll),
        "n": int(len(y)),
    }


# --------------------------------------------------------------------------- calibration
def _bin_index(conf, n_bins):
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bins are (lower, upper] as in Guo et al.'s reference code; a confidence of 0 goes to bin 0
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)


def reliability_curve(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count (bins (lower, upper], top-label).

    Empty bins have count 0 and NaN confidence/accuracy.
    """
    p, y = _prob_and_labels(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        mean_acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {"lower": edges[:-1], "upper": edges[1:], "confidence": mean_conf, "accuracy": mean_acc, "count": count}


def ece(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Top-label expected calibration error: sum_b (n_b/N) |acc_b - conf_b|, equal-width bins."""
    curve = reliability_curve(probs, labels, n_bins)
    n = curve["count"].sum()
    filled = curve["count"] > 0
    gaps = np.abs(curve["accuracy"][filled] - curve["confidence"][filled])
    return float((curve["count"][filled] / n * gaps).sum())


def softmax_rows(z: ArrayLike) -> np.ndarray:
    """Row-wise softmax of (N, C) scores, the row maximum subtracted first (no overflow); keeps the input's float
    dtype."""
    z = np.asarray(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def adaptive_ece(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """Top-label ECE with equal-mass bins (the "adaptive" calibration error of Nixon et al. 2019 and Kim et al.
    2025, top label only): the images sorted by confidence and cut into ``n_bins`` bins of (nearly) equal size
    (``numpy.array_split`` of the sorted order; ties broken by image order), then ``sum_b (n_b/N) |acc_b -
    conf_b|``. Equal-width bins (:func:`ece`) leave most bins empty for a confident model; these do not."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    p, y = _prob_and_labels(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    order = np.argsort(conf, kind="stable")
    n = len(conf)
    total = 0.0
    for part in np.array_split(order, min(n_bins, n)):
        total += len(part) / n * abs(correct[part].mean() - conf[part].mean())
    return float(total)


# --------------------------------------------------------------------------- human labels
def _kl_rows(h, m):
    """Row-wise KL(h || m) with 0 log 0 = 0 and m floored at MIN_PROB."""
    m = np.maximum(m, MIN_PROB)
    terms = np.where(h > 0, h * (np.log(np.where(h > 0, h, 1.0)) - np.log(m)), 0.0)
    return terms


def _human(human, shape):
    h = _probs(human, "human")
    if h.shape != shape:
        raise ValueError(f"human labels have shape {h.shape} but model probabilities have shape {shape}")
    return h


def kl_to_human(probs: ArrayLike, human: ArrayLike) -> float:
    """Mean over images of KL(human || model), 0 log 0 = 0.

    KL(model || human) would be infinite: 80% of CIFAR-10H entries are exact zeros.
    """
    return float(kl_per_image(probs, human).mean())


def kl_per_image(probs: ArrayLike, human: ArrayLike) -> np.ndarray:
    """(N,): KL(human || model) of each image, 0 log 0 = 0 (the terms :func:`kl_to_human` averages)."""
    p = _probs(probs)
    h = _human(human, p.shape)
    return _kl_rows(h, p).sum(axis=1)


def mean_confusion(probs: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """(C, C): row c is the mean predicted distribution over images whose true label is c.

    Rows of classes without images are NaN.
    """
    p, y = _prob_and_labels(probs, labels)
    c = p.shape[1]
    sums = np.zeros((c, c))
    np.add.at(sums, y, p)
    counts = np.bincount(y, minlength=c).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def class_kl_matrix(probs: ArrayLike, human: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """(C, C) with cell (c, k) = hbar_c[k] * log(hbar_c[k] / mbar_c[k]) (the paper's Fig. 6).

    hbar_c and mbar_c are the mean human and model distributions over images of true class c
    (ground-truth counts as denominators); each row sums to that class's KL.
    """
    p, y = _prob_and_labels(probs, labels)
    h = _human(human, p.shape)
    return _kl_rows(mean_confusion(h, y), mean_confusion(p, y))


def class_kl_to_human(probs: ArrayLike, human: ArrayLike, labels: ArrayLike) -> float:
    """Mean over classes c of KL(hbar_c || mbar_c) (the paper's class-averaged variant)."""
    per_class = class_kl_matrix(probs, human, labels).sum(axis=1)
    return float(np.nanmean(per_class))


# --------------------------------------------------------------------------- structure of predictions
def class_separability(probs: ArrayLike, labels: ArrayLike) -> float:
    """S_f = (1/C^2) sum_i sum_j KL(pbar_i || pbar_j) (paper Sec. 5, Table 4).

    pbar_k is the mean predicted distribution over images of true class k. Every class must
    have at least one image.
    """
    m = mean_confusion(probs, labels)
    if np.isnan(m).any():
        missing = np.where(np.isnan(m[:, 0]))[0].tolist()
        raise ValueError(f"class_separability needs images of every class; none for classes {missing}")
    c = m.shape[0]
    total = sum(_kl_rows(m[i][None, :].repeat(c, 0), m).sum() for i in range(c))
    return float(total / c**2)


def class_discrimination(embeddings: ArrayLike, labels: ArrayLike) -> dict:
    """Cohesion, adhesion and discrimination of an embedding (paper Sec. 3.4, Table 5).

    Embeddings are standardised per dimension over all samples, then compared by cosine
    similarity. Cohesion: mean over classes of the mean cosine over distinct within-class pairs.
    Adhesion: mean over class pairs i<j of the mean cosine between their members.
    D = (cohesion - adhesion) / sqrt(d).

    Uses sum(u_i . u_j over pairs) = (|sum u|^2 - sum |u|^2) / 2 for unit vectors u, so the cost
    is O(N d), not O(N^2). Note: the paper's Table 5 satisfies D*sqrt(10) = cohesion - adhesion,
    i.e. it was computed on 10-d outputs; call this on logits to compare with it.
    """
    e = _np(embeddings, np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"embeddings must be (N, d) with N >= 2, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("embeddings contain NaN or Inf")
    y = _labels(labels, e.shape[0], int(_np(labels).max()) + 1 if len(labels) else 1)
    d = e.shape[1]
    std = e.std(axis=0)
    z = np.divide(e - e.mean(axis=0), std, out=np.zeros_like(e), where=std > 0)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    u = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("class_discrimination needs at least two classes")
    sums = np.stack([u[y == c].sum(axis=0) for c in classes])
    counts = np.array([(y == c).sum() for c in classes], dtype=np.float64)
    sq_norms = np.array([(u[y == c] ** 2).sum() for c in classes])
    cohesion_per_class = []
    for s, n, sq in zip(sums, counts, sq_norms):
        if n >= 2:
            cohesion_per_class.append(((s @ s) - sq) / (n * (n - 1)))  # mean over n(n-1)/2 pairs
    gram = sums @ sums.T / np.outer(counts, counts)
    iu = np.triu_indices(len(classes), k=1)
    cohesion = float(np.mean(cohesion_per_class))
    adhesion = float(gram[iu].mean())
    return {
        "cohesion": cohesion,
        "adhesion": adhesion,
        "discrimination": (cohesion - adhesion) / np.sqrt(d),
        "dim": int(d),
    }


# --------------------------------------------------------------------------- student vs teacher
def agreement(p_student: ArrayLike, p_teacher: ArrayLike) -> float:
    """Top-1 agreement between student and teacher predictions."""
    s, t = _probs(p_student, "p_student"), _probs(p_teacher, "p_teacher")
    if s.shape != t.shape:
        raise ValueError(f"p_student {s.shape} and p_teacher {t.shape} must have the same shape")
    return float((s.argmax(axis=1) == t.argmax(axis=1)).mean())


def teacher_student_kl(p_teacher: ArrayLike, p_student: ArrayLike) -> float:
    """Mean over images of KL(teacher || student) at T=1 (fidelity, Stanton et al. 2021)."""
    t, s = _probs(p_teacher, "p_teacher"), _probs(p_student, "p_student")
    if s.shape != t.shape:
        raise ValueError(f"p_student {s.shape} and p_teacher {t.shape} must have the same shape")
    return float(_kl_rows(t, s).sum(axis=1).mean())
