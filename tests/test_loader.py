"""The device-resident loader: normalisation, seeded streams, epochs, resumption."""
import numpy as np
import pytest
import torch

from kdlib.data.loader import DeviceLoader, to_device_images


def split(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8), np.arange(n) % 10


MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def test_normalisation_matches_hand_computation():
    x, _ = split()
    got = to_device_images(x, MEAN, STD)
    expected = (x.transpose(0, 3, 1, 2) / 255.0 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert to_device_images(x, MEAN, STD, channels_last=True).is_contiguous(memory_format=torch.channels_last)


def test_an_epoch_is_a_permutation_of_the_split():
    x, y = split()
    loader = DeviceLoader(x, y, 16, mean=MEAN, std=STD, order_seed=3)
    assert len(loader) == 4
    seen = torch.cat([b.index for b in loader])
    assert sorted(seen.tolist()) == list(range(50))
    batch = next(iter(loader))
    full = to_device_images(x, MEAN, STD)
    assert torch.equal(batch.x, full[batch.index])  # 'none': the clean rows themselves
    assert torch.equal(batch.labels, torch.as_tensor(y)[batch.index])
    assert torch.equal(batch.y_soft, torch.eye(10)[batch.labels])
    assert len(DeviceLoader(x, y, 16, mean=MEAN, std=STD, drop_last=True)) == 3


def test_same_seeds_same_stream_and_separate_order_and_aug_streams():
    x, y = split()
    def stream(order_seed, aug_seed):
        loader = DeviceLoader(x, y, 16, "flipcrop+mixup", mean=MEAN, std=STD, order_seed=order_seed, aug_seed=aug_seed)
        return [(b.index.clone(), b.x.clone()) for _ in range(2) for b in loader]
    a, b = stream(1, 2), stream(1, 2)
    assert all(torch.equal(i, j) and torch.equal(u, v) for (i, u), (j, v) in zip(a, b))
    c = stream(1, 3)  # same order, different augmentation
    assert all(torch.equal(i, j) for (i, _), (j, _) in zip(a, c))
    assert not all(torch.equal(u, v) for (_, u), (_, v) in zip(a, c))
    d = stream(4, 2)  # different order
    assert not all(torch.equal(i, j) for (i, _), (j, _) in zip(a, d))
    # epochs differ from each other
    assert not torch.equal(a[0][0], a[4][0])


def test_state_dict_resumes_the_exact_stream():
    x, y = split()
    ref = DeviceLoader(x, y, 16, "cutmix", mean=MEAN, std=STD, order_seed=5, aug_seed=6)
    list(ref)
    state = ref.state_dict()
    expected = [(b.index.clone(), b.x.clone(), b.y_soft.clone()) for b in ref]
    fresh = DeviceLoader(x, y, 16, "cutmix", mean=MEAN, std=STD, order_seed=5, aug_seed=6)
    fresh.load_state_dict(state)
    got = [(b.index, b.x, b.y_soft) for b in fresh]
    assert fresh.epoch == 2
    for (i, u, s), (j, v, t) in zip(expected, got):
        assert torch.equal(i, j) and torch.equal(u, v) and torch.equal(s, t)
    other = DeviceLoader(x, y, 16, "mixup", mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="saved for augmentation"):
        other.load_state_dict(state)


def test_eval_order_is_sequential():
    x, y = split()
    loader = DeviceLoader(x, y, 20, mean=MEAN, std=STD, shuffle=False)
    assert torch.cat([b.index for b in loader]).tolist() == list(range(50))


@pytest.mark.parametrize("kwargs,needle", [({"batch_size": 0}, "batch_size"), ({"std": (0, 1, 1)}, "std"),
                                           ({"mean": (0.5,)}, "channels")])
def test_bad_arguments(kwargs, needle):
    x, y = split()
    args = {"batch_size": 8, "mean": MEAN, "std": STD, **kwargs}
    with pytest.raises(ValueError, match=needle):
        DeviceLoader(x, y, args.pop("batch_size"), **args)
