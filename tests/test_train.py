"""Training loop properties: self-distillation identity, cached == online teacher logits,
a frozen teacher, exact resumption, NaN detection."""
import copy

import numpy as np
import pytest
import torch

from kdlib.data.loader import DeviceLoader
from kdlib.blocks.models import build_model
from kdlib.train.recipe import Learner, NumericalError, Recipe
from kdlib.train.loop import fit, predict, teacher_logits_on

MEAN, STD = (0.5,), (0.25,)


def toy_split(n=240, seed=0):
    """Images whose class is written in their brightness pattern, so a LeNet learns them fast."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 60, size=(n, 16, 16, 1))
    for c in range(10):
        x[y == c, c:c + 4, 2:14, 0] += 180
    return x.astype(np.uint8), y


def loader(aug="none", shuffle=True, bs=32, seed=0):
    x, y = toy_split()
    return DeviceLoader(x, y, bs, aug, mean=MEAN, std=STD, num_classes=10, shuffle=shuffle,
                        order_seed=seed + 1, aug_seed=seed + 2)


def lenet(seed=0):
    torch.manual_seed(seed)
    return build_model("lenet", in_channels=1, image_size=16)


def accuracy(model):
    p = predict(model, loader(shuffle=False))
    return (p["probs"].argmax(1) == p["labels"]).mean()


def trained_teacher():
    t = lenet(1)
    fit([Learner("t", t, Recipe(epochs=8, batch_size=32, lr=0.05, weight_decay=0.0))], loader(), progress=False)
    return t


def test_teacher_learns_the_toy_task():
    assert accuracy(trained_teacher()) >= 0.85


def test_self_distillation_with_alpha_one_keeps_accuracy():
    # student starts as an exact copy of its frozen teacher: KL(t || s) = 0 and its gradient T(q - p) vanishes,
    # so with alpha=1 and no weight decay nothing moves, up to float rounding (gradients ~4e-7 measured).
    # At lr 0.05 this fixed point is unstable (a 1e-3 nudge of the weights grows to 1e3 in 4 epochs), so the
    # rounding of one CPU and thread count blew up to 1e-2 in two epochs where another stayed at 2e-4; at lr 0.01
    # it is stable (the nudge shrinks, checked below), and the rounding drift measured 4e-8 to 1.2e-7 after 4
    # epochs with 1 and 2 threads: atol 1e-5 leaves a factor 80.
    teacher = trained_teacher()
    start = copy.deepcopy(teacher)
    student = copy.deepcopy(teacher)
    before = accuracy(teacher)
    fit([Learner("s", student, Recipe(epochs=2, batch_size=32, lr=0.01, weight_decay=0.0), alpha=1.0)],
        loader(), teacher=teacher, progress=False)
    assert accuracy(student) == before
    for a, b in zip(student.state_dict().values(), teacher.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # the case is not chaotic: a student nudged 1e-3 away from the teacher is pulled back (its KL term falls
    # ten-fold in four epochs: 1.2e-4 -> 5e-6 measured)
    nudged, frozen = copy.deepcopy(start), copy.deepcopy(start)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for q in nudged.parameters():
            q.add_(1e-3 * torch.randn(q.shape, generator=g))
    learner = Learner("n", nudged, Recipe(epochs=4, batch_size=32, lr=0.01, weight_decay=0.0), alpha=1.0)
    fit([learner], loader(), teacher=frozen, progress=False)
    losses = [h["loss"] for h in learner.history]
    assert losses[-1] < losses[0] / 10, losses


def test_cached_teacher_logits_equal_online_ones():
    teacher = trained_teacher()
    cached = teacher_logits_on(teacher, loader(shuffle=False))
    for batch in loader():  # shuffled clean stream
        with torch.no_grad():
            torch.testing.assert_close(cached[batch.index], teacher(batch.x), rtol=1e-5, atol=1e-5)
    # and the students trained either way end up the same
    students = []
    for use_cache in (True, False):
        s = lenet(3)
        fit([Learner("s", s, Recipe(epochs=2, batch_size=32, lr=0.05), alpha=0.5)], loader(),
            teacher=None if use_cache else teacher, cached_teacher_logits=cached if use_cache else None,
            progress=False)
        students.append(s)
    for a, b in zip(students[0].state_dict().values(), students[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cached_logits_refused_for_an_augmented_stream():
    teacher = trained_teacher()
    cached = teacher_logits_on(teacher, loader(shuffle=False))
    with pytest.raises(ValueError, match="clean stream"):
        fit([Learner("s", lenet(), Recipe(epochs=1), alpha=0.5)], loader("mixup"), cached_teacher_logits=cached,
            progress=False)


def test_teacher_weights_and_batchnorm_statistics_unchanged():
    torch.manual_seed(0)
    teacher = build_model("resnet18", width=4, in_channels=1, image_size=16)
    teacher.train()
    teacher(torch.randn(16, 1, 16, 16))  # give BN non-trivial running stats
    before = copy.deepcopy(teacher.state_dict())
    fit([Learner("s", lenet(), Recipe(epochs=2, batch_size=32), alpha=0.5),
         Learner("s2", lenet(5), Recipe(epochs=2, batch_size=32), alpha=0.5)],
        loader("flipcrop+cutmix"), teacher=teacher, progress=False)
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_teacher_sees_the_students_tensor_and_gets_no_gradient():
    teacher, student = trained_teacher(), lenet(4)
    teacher.zero_grad(set_to_none=True)  # left over from its own training
    seen = {"t": [], "s": []}
    teacher.register_forward_hook(lambda m, i, o: seen["t"].append(i[0]))
    student.register_forward_hook(lambda m, i, o: seen["s"].append(i[0]))
    fit([Learner("s", student, Recipe(epochs=1, batch_size=32), alpha=0.5)], loader("flipcrop+cutmix"),
        teacher=teacher, progress=False)
    assert len(seen["t"]) == len(seen["s"]) == len(loader()) and all(a is b for a, b in zip(seen["t"], seen["s"]))
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    with pytest.raises(ValueError, match="neither a teacher nor cached teacher logits"):
        fit([Learner("s", lenet(), Recipe(epochs=1), alpha=0.5)], loader(), progress=False)


def test_lockstep_students_equal_solo_students():
    teacher = trained_teacher()
    a, b = lenet(7), lenet(8)
    fit([Learner("a", a, Recipe(epochs=2), alpha=0.5), Learner("b", b, Recipe(epochs=2), alpha=0.5)],
        loader("flipcrop"), teacher=teacher, progress=False)
    solo = lenet(8)
    fit([Learner("b", solo, Recipe(epochs=2), alpha=0.5)], loader("flipcrop"), teacher=teacher, progress=False)
    for u, v in zip(b.state_dict().values(), solo.state_dict().values()):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def interruptible_run(path, epochs, aug, checkpoint_every, stop_after=None):
    """An AlexNet (dropout: the RNG state matters) trained with checkpoints, interrupted after ``stop_after``."""
    torch.manual_seed(11)
    model = build_model("alexnet", width=4, in_channels=1, image_size=16)

    def stop(epoch):
        if stop_after is not None and epoch == stop_after:
            raise KeyboardInterrupt
    learner = Learner("m", model, Recipe(epochs=epochs, batch_size=32, lr=0.05), checkpoint=path)
    fit([learner], loader(aug), progress=False, on_epoch=stop, checkpoint_every=checkpoint_every)
    return model, learner


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    def run(path, stop_after=None):
        return interruptible_run(path, 3, "flipcrop+mixup", 0, stop_after)

    ref, ref_learner = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", stop_after=2)
    torch.manual_seed(999)  # a different global RNG state before resuming: the checkpoint restores it
    resumed, learner = run(tmp_path / "b.pt")
    assert [h["epoch"] for h in learner.history] == [1, 2, 3]
    for u, v in zip(ref.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(u, v)
    assert learner.history[-1]["loss"] == ref_learner.history[-1]["loss"]


def test_nan_loss_stops_with_epoch_and_step_and_keeps_checkpoint(tmp_path):
    model = lenet()
    ckpt = tmp_path / "m.pt"
    learner = Learner("m", model, Recipe(epochs=3, batch_size=32, lr=0.05), checkpoint=ckpt)

    def poison(epoch):
        with torch.no_grad():
            model.classifier.weight.fill_(float("nan"))

    with pytest.raises(NumericalError, match=r"epoch 2, step 1.*lr=0.05.*checkpoint \(epoch 1\) is kept"):
        fit([learner], loader(), progress=False, on_epoch=poison, checkpoint_every=0)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and torch.isfinite(state["model"]["classifier.weight"]).all() is not None


class FakeClock:
    """time.perf_counter for kdlib.train.loop that advances ``tick`` seconds at every call."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def perf_counter(self):
        self.now += self.tick
        return self.now


def test_checkpoints_by_wall_time_and_always_at_the_end(tmp_path, monkeypatch):
    import kdlib.train.loop as train

    saved = []
    real_save = train._save_checkpoint
    monkeypatch.setattr(train, "_save_checkpoint", lambda lr, o, s, ld, epoch: (saved.append(epoch),
                                                                               real_save(lr, o, s, ld, epoch)))
    # perf_counter is read before the loop, 3 times an epoch (start, epoch time, save test) and once per save:
    # with a 10 s tick an epoch spans 30 s, so a 50 s interval saves after epochs 2, 4 and the last (5)
    monkeypatch.setattr(train, "time", FakeClock(10.0))
    learner = Learner("m", lenet(), Recipe(epochs=5, batch_size=32, lr=0.05), checkpoint=tmp_path / "m.pt")
    fit([learner], loader(), progress=False, checkpoint_every=50)
    assert saved == [2, 4, 5]
    saved.clear()
    learner = Learner("m", lenet(), Recipe(epochs=3, batch_size=32, lr=0.05), checkpoint=tmp_path / "n.pt")
    fit([learner], loader(), progress=False, checkpoint_every=0)
    assert saved == [1, 2, 3]
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit([learner], loader(), progress=False, checkpoint_every=-1)


def test_resume_from_a_wall_time_checkpoint_is_exact(tmp_path, monkeypatch):
    """Interrupted after epoch 3 with the last checkpoint at epoch 2: epoch 3 is redone, bit for bit."""
    import kdlib.train.loop as train

    def run(path, stop_after=None):
        return interruptible_run(path, 4, "flipcrop+cutmix", 50, stop_after)

    monkeypatch.setattr(train, "time", FakeClock(10.0))
    ref, ref_learner = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", stop_after=3)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 2
    torch.manual_seed(999)
    resumed, learner = run(tmp_path / "b.pt")
    assert [h["epoch"] for h in learner.history] == [1, 2, 3, 4]
    for u, v in zip(ref.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(u, v)
    assert [h["loss"] for h in learner.history] == [h["loss"] for h in ref_learner.history]


@pytest.mark.parametrize("engine", ["plain", "static"])
def test_nan_in_a_later_step_is_found_without_per_step_syncs(tmp_path, engine):
    """The flag accumulates on the device: the error still names the first bad step of the epoch (in the
    plain step and in the group step on static buffers, where it lives inside the CUDA graph)."""
    x, y = toy_split()
    x[100:] = 0  # harmless images; the poison is in the loss below
    model = lenet()
    learner = Learner("m", model, Recipe(epochs=2, batch_size=32, lr=0.05), checkpoint=tmp_path / "m.pt")
    ld = DeviceLoader(x, y, 32, "none", mean=MEAN, std=STD, num_classes=10, shuffle=False)
    import kdlib.train.loop as train

    calls = {"n": 0}
    real = train._loss

    def poisoned(lr, logits, y_soft, t):
        calls["n"] += 1
        parts = real(lr, logits, y_soft, t)
        if calls["n"] == len(ld) + 3:  # epoch 2, step 3
            parts = dict(parts, loss=parts["loss"] * float("inf"))
        return parts

    train._loss, saved = poisoned, None
    try:
        with pytest.raises(NumericalError, match=r"loss is inf at epoch 2, step 3.*checkpoint \(epoch 1\) is kept"):
            fit([learner], ld, progress=False, checkpoint_every=0, engine=engine)
    finally:
        train._loss = real
    assert torch.load(tmp_path / "m.pt", weights_only=True)["epoch"] == 1


@pytest.mark.parametrize("kwargs,needle", [({"epochs": -1}, "epochs"), ({"epochs": 1, "lr": 0}, "lr"),
                                           ({"epochs": 1, "schedule": "step"}, "schedule"),
                                           ({"epochs": 1, "batch_size": 0}, "batch_size")])
def test_bad_recipes(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        Recipe(**kwargs)


def test_one_cycle_schedule_shape():
    model = lenet()
    r = Recipe(epochs=2, lr=0.1, warmup=0.25)
    opt = r.optimizer(model)
    sched = r.scheduler(opt, steps_per_epoch=4)  # 8 steps, 2 warm-up
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[1] == pytest.approx(0.1) and max(lrs) == pytest.approx(0.1)
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] < lrs[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_resume_on_the_gpu_puts_momentum_buffers_beside_the_parameters(tmp_path):
    """Found on the H200: optimisers built before the model moved to the device restored their momentum
    buffers on the CPU, and the resumed step failed with 'found at least two devices'."""
    x, y = toy_split()

    def run(stop_after=None):
        torch.manual_seed(2)
        model = build_model("lenet", in_channels=1, image_size=16)

        def stop(epoch):
            if stop_after is not None and epoch == stop_after:
                raise KeyboardInterrupt
        ld = DeviceLoader(x, y, 32, "flipcrop", mean=MEAN, std=STD, num_classes=10, device="cuda")
        learner = Learner("m", model, Recipe(epochs=3, batch_size=32, lr=0.05), checkpoint=tmp_path / "g.pt")
        fit([learner], ld, progress=False, on_epoch=stop, checkpoint_every=0)
        return learner

    with pytest.raises(KeyboardInterrupt):
        run(stop_after=1)
    assert [h["epoch"] for h in run().history] == [1, 2, 3]


def test_a_stop_callback_ends_training_at_that_epoch_checkpointed_and_a_resume_stays_there(tmp_path):
    calls = []

    def stop(epoch):
        calls.append(epoch)
        return epoch >= 2

    model = lenet(3)
    learner = Learner("m", model, Recipe(epochs=5, batch_size=32), checkpoint=tmp_path / "ck.pt")
    fit([learner], loader(), progress=False, stop=stop, checkpoint_every=1e9)
    assert [h["epoch"] for h in learner.history] == [1, 2] and calls == [1, 2]
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert saved["epoch"] == 2  # the stop epoch is saved although checkpoint_every was not reached
    # what an interrupted run (killed after the checkpoint, before its DONE) does when resumed: nothing more
    again = Learner("m", lenet(9), Recipe(epochs=5, batch_size=32), checkpoint=tmp_path / "ck.pt")
    fit([again], loader(), progress=False, stop=stop)
    assert len(again.history) == 2 and calls[-1] == 2
    for u, v in zip(again.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(u, v)
    # without a stop the same recipe trains all five epochs, and the last epoch is never asked about
    calls.clear()
    full = Learner("m", lenet(3), Recipe(epochs=5, batch_size=32))
    fit([full], loader(), progress=False, stop=lambda e: calls.append(e) or False)
    assert len(full.history) == 5 and calls == [1, 2, 3, 4]
