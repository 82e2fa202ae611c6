"""Mixers: each regime checked against its definition with an independent expectation."""
import numpy as np
import pytest
import torch
from scipy import stats

from kdlib.blocks.augment import MIXER_TYPES, build_augmentation, sample_beta


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def distinct_batch(n=16, c=3, h=32, w=32, seed=0):
    """Random images with no zero pixel, labels 0..n-1 so every image is its own class."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) + 0.5, torch.arange(n)


def recover_pairing(y_soft):
    """From soft targets built on labels arange(N): lambda_i = mass on own label, partner = other mass."""
    n = y_soft.shape[0]
    own = y_soft[torch.arange(n), torch.arange(n)]
    other = y_soft.clone()
    other[torch.arange(n), torch.arange(n)] = -1
    partner = torch.where(own > 1 - 1e-6, torch.arange(n), other.argmax(1))
    return own, partner


# ----------------------------------------------------------------------------- generic contract
@pytest.mark.parametrize("spec", ["none", "flipcrop", "cutout", "mixup", "cutmix", "flipcrop+cutout",
                                  "flipcrop+mixup", "flipcrop+cutmix", "cutmix(prob=1)+mixup"])
def test_contract_shapes_soft_targets_and_determinism(spec):
    x, _ = distinct_batch()
    y = torch.randint(0, 10, (16,), generator=gen(3))
    aug = build_augmentation(spec)
    x1, y1 = aug(x, y, generator=gen(7))
    x2, y2 = aug(x, y, generator=gen(7))
    assert x1.shape == x.shape and x1.dtype == x.dtype
    assert y1.shape == (16, 10) and y1.dtype == torch.float32
    torch.testing.assert_close(y1.sum(1), torch.ones(16))
    assert (y1 >= 0).all()
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # same seed, same output


@pytest.mark.parametrize("spec", ["flipcrop", "cutout", "mixup", "cutmix(prob=1)"])
def test_different_seeds_differ(spec):
    x, y = distinct_batch()
    aug = build_augmentation(spec, num_classes=16)
    assert not torch.equal(aug(x, y, generator=gen(1))[0], aug(x, y, generator=gen(2))[0])


def test_none_is_identity_with_one_hot_targets():
    x, y = distinct_batch()
    xo, yo = build_augmentation("none", num_classes=16)(x, y)
    assert torch.equal(xo, x)
    assert torch.equal(yo, torch.eye(16))


def test_soft_targets_pass_through():
    x, _ = distinct_batch(n=4)
    soft = torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    xo, yo = build_augmentation("flipcrop", num_classes=2)(x, soft, generator=gen())
    assert torch.equal(yo, soft)


# ----------------------------------------------------------------------------- beta sampler
@pytest.mark.parametrize("a", [0.2, 1.0, 2.0])
def test_beta_sampler_matches_scipy_distribution(a):
    like = torch.zeros(1)
    g = gen(11)
    draws = np.array([float(sample_beta(a, a, like, g)) for _ in range(3000)])
    assert ((draws >= 0) & (draws <= 1)).all()
    assert stats.kstest(draws, stats.beta(a, a).cdf).pvalue > 1e-3


# ----------------------------------------------------------------------------- mixup
def test_mixup_is_exact_convex_combination_with_matching_labels():
    x, y = distinct_batch()
    for seed in range(5):
        xo, yo = build_augmentation("mixup", num_classes=16)(x, y, generator=gen(seed))
        own, partner = recover_pairing(yo)
        lam = own[partner != torch.arange(16)]
        assert lam.numel() > 0 and torch.allclose(lam, lam[0])  # one lambda per batch
        lam = float(lam[0])
        expected = lam * x + (1 - lam) * x[partner]
        torch.testing.assert_close(xo, expected, rtol=0, atol=1e-6)
        assert sorted(partner.tolist()) == list(range(16))  # pairing is a permutation


# ----------------------------------------------------------------------------- cutmix
def test_cutmix_pixel_share_equals_label_mass_and_box_is_shared():
    n, h, w = 12, 32, 32
    x = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, h, w).contiguous()
    y = torch.arange(n)
    aug = build_augmentation("cutmix(prob=1)", num_classes=n)
    for seed in range(20):
        xo, yo = aug(x, y, generator=gen(seed))
        own, partner = recover_pairing(yo)
        swapped = xo[:, 0] != x[:, 0]  # pixels that came from the partner
        for i in range(n):
            if partner[i] == i:
                continue
            assert torch.all((xo[i] == x[i]) | (xo[i] == x[partner[i]]))
            share = swapped[i].float().mean()
            assert abs(float(share) - float(1 - own[i])) < 1e-6
        mixed = partner != torch.arange(n)
        masks = swapped[mixed]
        assert torch.all(masks == masks[0])  # one box per batch
        if masks[0].any():  # the swapped region is an axis-aligned rectangle
            rows, cols = masks[0].any(1).nonzero(), masks[0].any(0).nonzero()
            box = torch.zeros(h, w, dtype=torch.bool)
            box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
            assert torch.equal(box, masks[0])


def test_cutmix_fires_on_about_half_the_batches():
    x, y = distinct_batch(n=8)
    aug = build_augmentation("cutmix", num_classes=8)
    g = gen(5)
    mixed = sum(bool((aug(x, y, generator=g)[1].max(1).values < 1).any()) for _ in range(400))
    # Binomial(400, ~0.5): sd 10; the paper's code fired on every batch (400)
    assert 160 <= mixed <= 240


def test_cutmix_never_fires_at_prob_zero():
    x, y = distinct_batch(n=8)
    xo, yo = build_augmentation("cutmix(prob=0)", num_classes=8)(x, y, generator=gen())
    assert torch.equal(xo, x) and torch.equal(yo, torch.eye(8))


# ----------------------------------------------------------------------------- cutout
def possible_spans(size, length):
    """Every (start, stop) a clipped hole can cover, enumerated over all centres."""
    return {(max(c - length // 2, 0), min(c + length // 2, size)) for c in range(size)}


@pytest.mark.parametrize("length", [16, 8])
def test_cutout_zeroes_exactly_a_clipped_square(length):
    x, y = distinct_batch(n=400, h=32, w=32, seed=1)
    xo, yo = build_augmentation(f"cutout(length={length})", num_classes=400)(x, y, generator=gen(3))
    assert torch.equal(yo, torch.eye(400))
    spans = possible_spans(32, length)
    starts_at_zero = 0
    for i in range(400):
        zero = xo[i] == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # all channels
        z = zero[0]
        rows, cols = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        r, c = (int(rows.min()), int(rows.max()) + 1), (int(cols.min()), int(cols.max()) + 1)
        box = torch.zeros_like(z)
        box[r[0]:r[1], c[0]:c[1]] = True
        assert torch.equal(box, z)  # a filled rectangle
        assert r in spans and c in spans  # a square of side `length`, clipped at the border
        assert torch.equal(xo[i][:, ~z], x[i][:, ~z])  # nothing else touched
        starts_at_zero += r[0] == 0
    # centre uniform over rows: the hole touches the top edge when cy <= length/2
    p = (length // 2 + 1) / 32
    assert abs(starts_at_zero / 400 - p) < 4 * np.sqrt(p * (1 - p) / 400)


# ----------------------------------------------------------------------------- flipcrop
def reference_shift(img, dy, dx, flip, pad=4):
    """Independent numpy: zero-pad, crop at (dy, dx), then optionally flip left-right."""
    a = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    crop = a[:, dy:dy + img.shape[1], dx:dx + img.shape[2]]
    return crop[:, :, ::-1] if flip else crop


def test_flipcrop_outputs_are_zero_padded_shifts_possibly_flipped():
    x, y = distinct_batch(n=64, h=12, w=12, seed=2)
    xo, _ = build_augmentation("flipcrop", num_classes=64)(x, y, generator=gen(4))
    found = []
    for i in range(64):
        img, out = x[i].numpy(), xo[i].numpy()
        matches = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                   if np.array_equal(reference_shift(img, dy, dx, f), out)]
        assert len(matches) == 1, f"image {i}: output is not a padded shift of its input"
        found.append(matches[0])
    flips = sum(f for _, _, f in found)
    assert 16 <= flips <= 48  # each image flipped independently with p=0.5
    assert len({dy for dy, _, _ in found}) >= 7 and len({dx for _, dx, _ in found}) >= 7


def test_flipcrop_without_padding_only_flips():
    x, y = distinct_batch(n=8)
    xo, _ = build_augmentation("flipcrop(padding=0)", num_classes=8)(x, y, generator=gen())
    for i in range(8):
        assert torch.equal(xo[i], x[i]) or torch.equal(xo[i], x[i].flip(-1))


# ----------------------------------------------------------------------------- spec and errors
def test_spec_is_canonical_and_overridable():
    aug = build_augmentation("flipcrop + cutout(length=8)")
    assert aug.spec == "flipcrop(padding=4,flip=True,fill=black)+cutout(length=8,n_holes=1)"
    assert build_augmentation("cutmix(beta=1,prob=1)").spec == "cutmix(beta=1,prob=1)"
    assert build_augmentation("mixup").mixes and not build_augmentation("flipcrop+cutout").mixes
    assert set(MIXER_TYPES) == {"none", "flipcrop", "cutout", "mixup", "cutmix"}


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("autoaugment", "unknown augmentation regime 'autoaugment'.*cutmix"),
        ("cutout(length=-1)", "length must be an integer >= 0"),
        ("cutout(size=8)", "no parameter.*length"),
        ("mixup(alpha=0)", "alpha must be a positive number"),
        ("cutmix(prob=1.5)", r"prob must be in \[0, 1\]"),
        ("cutout(length=abc)", "length must be an integer"), ("cutout(length=1.5.2)", "cannot read '1.5.2'"),
        ("flipcrop(4)", "must be key=value"),
        ("", "non-empty string"),
        ("flipcrop+", "cannot parse"),
        # parameters beyond their bounds (hostile values)
        ("mixup(alpha=1e-9)", r"alpha must lie in \[0.0001, 10000\]"),
        ("cutmix(beta=1e9)", r"beta must lie in"),
        ("cutout(n_holes=100000)", "n_holes must be at most 64"),
        ("cutout(length=100000)", "length must be at most 1024"),
        ("flipcrop(padding=5000)", "padding must be at most 64"),
    ],
)
def test_bad_specs_raise_value_error_naming_the_cause(spec, needle):
    with pytest.raises(ValueError, match=needle):
        build_augmentation(spec)


def test_bad_batches_raise_value_error():
    aug = build_augmentation("mixup", num_classes=10)
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(ValueError, match="batch size"):
        aug(x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lie in \[0, 9\]"):
        aug(x, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        aug(x[0], torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, 10\) soft targets"):
        aug(x, torch.rand(4, 3))


# ----------------------------------------------------------------------------- hostile parameters
@pytest.mark.parametrize("a", [1e-4, 1e-3, 0.01])
def test_beta_sampler_stays_finite_for_small_parameters(a):
    like = torch.zeros(1)
    g = gen(3)
    draws = np.array([float(sample_beta(a, a, like, g)) for _ in range(300)])
    assert np.isfinite(draws).all() and ((draws >= 0) & (draws <= 1)).all()
    # Beta(a, a) for small a puts its mass at the two ends, half on each
    assert 0.3 < (draws > 0.5).mean() < 0.7


@pytest.mark.parametrize("spec", ["mixup(alpha=0.001)", "cutmix(beta=0.001,prob=1.0)"])
def test_mixers_with_small_parameters_give_finite_batches(spec):
    x, y = distinct_batch()
    aug = build_augmentation(spec, num_classes=16)
    for seed in range(20):
        xo, yo = aug(x, y, generator=gen(seed))
        assert torch.isfinite(xo).all() and torch.isfinite(yo).all()
        torch.testing.assert_close(yo.sum(1), torch.ones(len(yo)))


def test_ordinary_beta_draws_are_unchanged_by_the_log_path():
    # the values generator seed 0 gave before the sampler worked in logs: recorded runs replay exactly
    g = gen(0)
    got = [float(sample_beta(a, a, torch.zeros(1), g)) for a in (1.0, 0.2, 2.0)]
    assert got == [0.3633885599782783, 0.9389391589892341, 0.7521887045970167]


def test_flipcrop_pads_black_exactly_as_torchvision_randomcrop_before_normalize():
    """torchvision: RandomCrop(32, padding=4) and RandomHorizontalFlip on the [0, 1] image, then Normalize.
    Ours works on normalised batches: with the loader's mean/std the border is -mean/std, i.e. black."""
    import torchvision.transforms.functional as TF

    from kdlib.blocks.augment import build_augmentation

    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    g = torch.Generator().manual_seed(3)
    raw = torch.rand(6, 3, 32, 32, generator=g)  # [0, 1] images
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    aug = build_augmentation("flipcrop").set_normalization(mean, std)
    assert aug.spec == "flipcrop(padding=4,flip=True,fill=black)"
    out, _ = aug((raw - m) / s, torch.zeros(6, dtype=torch.long), generator=torch.Generator().manual_seed(7))
    # the same draws, in FlipCrop's order: row offsets, column offsets, flips
    g2 = torch.Generator().manual_seed(7)
    dy, dx = torch.randint(0, 9, (6,), generator=g2), torch.randint(0, 9, (6,), generator=g2)
    flipped = torch.rand((6,), generator=g2) < 0.5
    for i in range(6):
        ref = TF.crop(TF.pad(raw[i], [4], fill=0), int(dy[i]), int(dx[i]), 32, 32)
        if flipped[i]:
            ref = TF.hflip(ref)
        ref = TF.normalize(ref, mean, std)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-6)
    assert flipped.any() and (dy != 4).any()  # the border and the flip were exercised
    # the legacy fill: the mean colour, 0 once normalised
    mean_fill = build_augmentation("flipcrop(fill=mean)").set_normalization(mean, std)
    out2, _ = mean_fill((raw - m) / s, torch.zeros(6, dtype=torch.long), generator=torch.Generator().manual_seed(7))
    i = int(torch.nonzero(dy < 4)[0])  # an image cropped from the top border: its first row is padding
    assert torch.equal(out2[i, :, 0], torch.zeros_like(out2[i, :, 0]))
    assert torch.allclose(out[i, :, 0], (-torch.tensor(mean) / torch.tensor(std))[:, None].expand(3, 32))
    with pytest.raises(ValueError, match="fill must be one of"):
        build_augmentation("flipcrop(fill=grey)")
