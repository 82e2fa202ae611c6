"""The engines of :func:`kdlib.train.loop.fit`: the group step on static buffers (``static``; captured as CUDA
graphs by ``graphs``) against the plain ``torch.optim`` step, checkpoints that resume across engines, and
the engine's choice and errors (the first non-finite step: tests/test_train.py, with each engine)."""
import pytest
import torch

from kdlib.train.fast import GroupStep, lr_table
from kdlib.blocks.models import build_model
from kdlib.train.recipe import Learner, Recipe, resolve_engine
from kdlib.train.loop import fit, teacher_logits_on
from test_train import loader, lenet, toy_split, trained_teacher

RECIPE = Recipe(epochs=3, batch_size=50, lr=0.05)  # 240 images: four batches of 50 and a short one of 40


def group(kind: str):
    """Fresh models of one group, the same every call: LeNet + AlexNet students, or a small ResNet teacher."""
    torch.manual_seed(11)
    if kind == "teacher":
        return [build_model("resnet18", in_channels=1, image_size=16, width=8)]
    return [lenet(2), build_model("alexnet", in_channels=1, image_size=16)]


CASES = {
    # the students of a clean stream, distilled from cached teacher logits (LeNet and AlexNet with dropout)
    "cached teacher": dict(kind="students", aug="none", alpha=0.5, cached=True),
    # an augmented stream: the teacher runs on the very batch, inside the step
    "online teacher, mixup": dict(kind="students", aug="flipcrop+mixup", alpha=0.5),
    # a batch-norm teacher with label smoothing, a cosine schedule and plain momentum. A small lr: this tiny
    # ResNet (batch norm over 2x2 maps) is chaotic at 0.05, where a 1e-7 relative nudge of its initial weights
    # moves them by 1e-3 within four steps of the plain path alone; at 0.002 the nudge moves them by 2e-5, but
    # it stays bistable: rounding at every step tips its epoch-2 loss by 2.3e-4 in 5 of 6 draws (1 thread,
    # OPENBLAS_CORETYPE=Haswell, a Xeon with AVX-512), which the per-step jitter below measures
    "resnet, smoothing, cosine": dict(kind="teacher", aug="flipcrop+cutmix", alpha=0.0, recipe=Recipe(
        epochs=2, batch_size=50, lr=0.002, schedule="cosine", nesterov=False, label_smoothing=0.1)),
    "no momentum, no decay": dict(kind="students", aug="flipcrop", alpha=0.0, recipe=Recipe(
        epochs=2, batch_size=50, lr=0.05, momentum=0.0, weight_decay=0.0)),
}


@pytest.fixture(scope="module")
def teacher():
    return trained_teacher()


def train(engine, teacher, kind, aug, alpha, cached=False, recipe=RECIPE, checkpoints=None, stop_after=None,
          jitter=None):
    models = group(kind)
    if jitter is not None:  # rounding-sized noise on every gradient of every step, from its own generator (the
        gen = torch.Generator().manual_seed(jitter)  # global one draws dropout): how far this processor's
        for m in models:                              # arithmetic carries a different summation order
            for q in m.parameters():
                q.register_hook(lambda g: g * (1.0 + JITTER * (2.0 * torch.randint(0, 2, g.shape, generator=gen,
                                                                                   dtype=g.dtype) - 1.0)))
    learners = [Learner(f"m{i}", m, recipe, alpha=alpha, checkpoint=None if checkpoints is None else
                        checkpoints / f"m{i}.pt") for i, m in enumerate(models)]
    logits = teacher_logits_on(teacher, loader(shuffle=False)) if cached else None

    def interrupt(epoch):
        if stop_after is not None and epoch == stop_after:
            raise KeyboardInterrupt

    torch.manual_seed(5)  # dropout draws from the global generator, in the same order in every engine
    fit(learners, loader(aug, bs=recipe.batch_size), teacher=None if cached or alpha == 0 else teacher,
        cached_teacher_logits=logits, progress=False, engine=engine, checkpoint_every=0, on_epoch=interrupt)
    return learners


JITTER = 2e-7    # about two float32 ulps, relative: the size of a different summation order's rounding
DRAWS = 3        # jittered plain trainings per case; the bound is the largest drift among them
SAFETY = 10.0    # the engines may differ by this many times that drift


def drift(a, b) -> tuple[float, float]:
    """The largest relative loss difference (over every epoch and loss term) and the largest absolute
    parameter difference between two trainings of the same group."""
    loss, param = 0.0, 0.0
    for la, lb in zip(a, b):
        for ha, hb in zip(la.history, lb.history):
            for k in ("loss", "loss_ce", "loss_kd"):
                loss = max(loss, abs(hb[k] - ha[k]) / max(abs(ha[k]), 1e-6))
        for u, v in zip(la.model.state_dict().values(), lb.model.state_dict().values()):
            if u.is_floating_point():
                param = max(param, float((u - v).abs().max()))
    return loss, param


def assert_same_training(a, b, atol=1e-3, rel=1e-5):
    """Same loss curve (float tolerance), accuracy and learning rate per epoch; parameters close."""
    for la, lb in zip(a, b):
        assert [h["epoch"] for h in la.history] == [h["epoch"] for h in lb.history]
        for ha, hb in zip(la.history, lb.history):
            for k in ("loss", "loss_ce", "loss_kd"):
                assert hb[k] == pytest.approx(ha[k], rel=rel, abs=1e-6), (la.name, ha["epoch"], k)
            assert hb["train_acc"] == pytest.approx(ha["train_acc"], abs=1 / 240 + 1e-9)
            assert hb["lr"] == ha["lr"]
        for (name, u), v in zip(la.model.state_dict().items(), lb.model.state_dict().values()):
            torch.testing.assert_close(v, u, rtol=1e-3, atol=atol, msg=f"{la.name} {name}")


@pytest.mark.parametrize("case", list(CASES))
def test_the_static_group_step_trains_as_the_plain_step_does(case, teacher):
    plain = train("plain", teacher, **CASES[case])
    static = train("static", teacher, **CASES[case])
    assert {lr.engine for lr in plain} == {"plain"} and {lr.engine for lr in static} == {"static"}
    # The engines sum and update in another order, so they differ by rounding at every step, and how far that
    # grows in training depends on the processor and thread count (the batch-norm ResNet: 7e-5 relative on an
    # AMD EPYC, 2.3e-4 on a Xeon with one thread, where a fixed 1e-5 and then a one-time nudge of the initial
    # weights both failed). The bound is measured here: the plain path against itself with every gradient of
    # every step jittered by two ulps, the largest drift of DRAWS draws (1 thread, Haswell: 1.1e-5, 2.1e-7,
    # 2.3e-4, 4e-8 for the four cases, against static-vs-plain 1.5e-7, 1.6e-7, 2.3e-4, 0). The engines must
    # agree within SAFETY times that drift, and never worse than 1e-3 relative (a 1 % larger lr moves the
    # ResNet's loss by 6e-4, the cached-teacher group's by 3e-2; the lr itself is compared exactly).
    drifts = [drift(plain, train("plain", teacher, **CASES[case], jitter=d)) for d in range(DRAWS)]
    loss_drift, param_drift = max(d[0] for d in drifts), max(d[1] for d in drifts)
    rel = min(max(1e-5, SAFETY * loss_drift), 1e-3)
    assert_same_training(plain, static, rel=rel, atol=max(1e-3, SAFETY * param_drift))
    # and the run learned something (the comparison is not between two untrained models)
    assert plain[0].history[-1]["loss"] < plain[0].history[0]["loss"]


@pytest.mark.parametrize("first,then", [("static", "plain"), ("plain", "static")])
def test_a_checkpoint_of_one_engine_resumes_in_the_other(first, then, teacher, tmp_path):
    case = dict(CASES["online teacher, mixup"])
    ref = train("plain", teacher, **case, checkpoints=tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        train(first, teacher, **case, checkpoints=tmp_path / "mix", stop_after=2)
    # the interrupted run's checkpoint holds what the plain path's holds after two epochs: momentum, schedule
    with pytest.raises(KeyboardInterrupt):
        train("plain", teacher, **case, checkpoints=tmp_path / "two", stop_after=2)
    for i in range(2):
        a = torch.load(tmp_path / "mix" / f"m{i}.pt", weights_only=True)
        b = torch.load(tmp_path / "two" / f"m{i}.pt", weights_only=True)
        assert a["epoch"] == b["epoch"] == 2
        assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 2 * 5
        assert a["scheduler"]["_last_lr"] == b["scheduler"]["_last_lr"]
        assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]
        for k, s in b["optimizer"]["state"].items():
            torch.testing.assert_close(a["optimizer"]["state"][k]["momentum_buffer"], s["momentum_buffer"],
                                       rtol=1e-3, atol=1e-3)
    torch.manual_seed(123)  # the checkpoint restores the generator
    resumed = train(then, teacher, **case, checkpoints=tmp_path / "mix")
    assert {lr.engine for lr in resumed} == {then}
    assert_same_training(ref, resumed)


def test_the_learning_rate_table_is_the_schedule_by_hand():
    # one-cycle over 8 steps with 2 warm-up steps: up to lr in two steps, then linearly down to 0
    table = lr_table(Recipe(epochs=2, batch_size=8, lr=0.1, warmup=0.25), 4)
    expect = [0.05, 0.1, 0.1, 0.1 * 5 / 6, 0.1 * 4 / 6, 0.1 * 3 / 6, 0.1 * 2 / 6, 0.1 / 6, 0.0]
    assert table == pytest.approx(expect, abs=1e-12)


def test_the_engine_is_chosen_and_checked(monkeypatch):
    monkeypatch.delenv("KDLIB_ENGINE", raising=False)
    assert resolve_engine("auto", "cpu") == "plain"
    assert resolve_engine("static", "cpu") == "static"
    with pytest.raises(ValueError, match="needs a CUDA device.*plain"):
        resolve_engine("graphs", "cpu")
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("fast", "cpu")
    monkeypatch.setenv("KDLIB_ENGINE", "static")
    assert resolve_engine("auto", "cpu") == "static"
    monkeypatch.setenv("KDLIB_ENGINE", "turbo")
    with pytest.raises(ValueError, match=r"\$KDLIB_ENGINE: engine must be one of"):
        resolve_engine("auto", "cpu")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        GroupStep([Learner("m", lenet(), RECIPE)], [RECIPE.optimizer(lenet())], "cpu", 5, 0, None, graphs=True)


class FakeGraph:
    """Stands in for a captured CUDA graph on the CPU: a replay runs the captured step again, eagerly."""

    def __init__(self, fn):
        self.fn, self.replays = fn, 0

    def replay(self):
        self.replays += 1
        self.fn()


def run_group_step(graphs: bool, monkeypatch, fail_capture=False):
    """Two epochs of a ResNet (batch norm) + LeNet group through GroupStep by hand, as fit drives it, with the
    CUDA capture replaced by one that, like the real warm-up, changes the state: it runs the step
    ``warmup`` times and once more "while capturing". GroupStep must undo all of that."""
    import kdlib.train.fast as fast
    from kdlib.train.steps import _loss

    captures = []

    def fake_capture(fn, pool, warmup):
        if fail_capture:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        for _ in range(warmup + 1):
            fn()
        captures.append(FakeGraph(fn))
        return captures[-1], "pool"

    monkeypatch.setattr(fast, "_cuda_capture", fake_capture)
    torch.manual_seed(11)
    models = [build_model("resnet18", in_channels=1, image_size=16, width=8), lenet(2)]
    recipe = Recipe(epochs=2, batch_size=50, lr=0.002)
    learners = [Learner(f"m{i}", m.train(), recipe) for i, m in enumerate(models)]
    opts = [recipe.optimizer(m) for m in models]
    scheds = [recipe.scheduler(o, 5) for o in opts]
    ld = loader("flipcrop+cutmix", bs=50)
    step = GroupStep(learners, opts, "cpu", len(ld), 0, _loss)
    step.graphs = graphs  # on a CPU only the fake capture above can stand behind it
    sums = []
    for epoch in range(2):
        step.begin_epoch()
        for batch in ld:
            step(batch)
        step.sync_to(scheds, (epoch + 1) * len(ld))
        sums.append([step.tally.read(i) for i in range(2)])
    return learners, sums, captures, step


def test_graph_capture_leaves_the_state_as_it_found_it(monkeypatch):
    """The warm-up and capture run on the real parameters, momentum buffers, batch-norm statistics and
    counters; after them the first replay must be the first real step: with captures that change the state
    (as on a GPU), training equals the static engine's bit for bit, for the full and the short batch shape."""
    eager, eager_sums, _, _ = run_group_step(False, monkeypatch)
    graphed, graphed_sums, captures, step = run_group_step(True, monkeypatch)
    assert step.engine == "graphs" and len(captures) == 2  # one graph per batch shape: 50 and the last 40
    assert sorted(g.replays for g in captures) == [2, 8]  # 2 epochs x (4 full batches, 1 short one)
    assert graphed_sums == eager_sums
    for a, b in zip(eager, graphed):
        for (name, u), v in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            assert torch.equal(u, v), name
    assert int(step.step_count) == 10


def test_a_failed_capture_falls_back_to_the_same_step_eagerly(monkeypatch):
    eager, eager_sums, _, _ = run_group_step(False, monkeypatch)
    with pytest.warns(UserWarning, match="capture failed.*operation not permitted.*engine 'static'"):
        fell, fell_sums, _, step = run_group_step(True, monkeypatch, fail_capture=True)
    assert step.engine == "static" and "operation not permitted" in step.capture_error
    assert fell_sums == eager_sums
    for a, b in zip(eager, fell):
        for u, v in zip(a.model.state_dict().values(), b.model.state_dict().values()):
            assert torch.equal(u, v)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("case", ["cached teacher", "resnet, smoothing, cosine"])
def test_cuda_graphs_follow_the_plain_loss_curve(case, teacher):
    """On the GPU: the graphed group step (a full and a short batch shape) against the plain step.
    bf16 autocast and cuDNN's choices make both differ from run to run slightly: the loss curves agree to
    1e-2 relative and no capture fell back. (AlexNet without dropout here: the graph's warm-up consumes
    random numbers, so with dropout the two runs would draw different masks.)"""
    def run(engine):
        c = CASES[case]
        models = group(c["kind"])
        if c["kind"] == "students":  # no dropout: the capture's warm-up draws random masks the plain run does not
            torch.manual_seed(11)
            models = [lenet(2), build_model("alexnet", in_channels=1, image_size=16, dropout=0.0)]
        recipe = c.get("recipe", RECIPE)
        x, y = toy_split()
        from kdlib.data.loader import DeviceLoader
        from test_train import MEAN, STD

        ld = DeviceLoader(x, y, recipe.batch_size, c["aug"], mean=MEAN, std=STD, num_classes=10, device="cuda",
                          order_seed=1, aug_seed=2)
        learners = [Learner(f"m{i}", m, recipe, alpha=c["alpha"]) for i, m in enumerate(models)]
        cached = None
        if c.get("cached"):
            t = teacher.cuda()
            cached = teacher_logits_on(t, DeviceLoader(x, y, 50, "none", mean=MEAN, std=STD, num_classes=10,
                                                       device="cuda", shuffle=False))
        torch.manual_seed(5)
        fit(learners, ld, cached_teacher_logits=cached, progress=False, engine=engine)
        return learners

    plain, graphed = run("plain"), run("graphs")
    assert {lr.engine for lr in graphed} == {"graphs"}
    for la, lb in zip(plain, graphed):
        for ha, hb in zip(la.history, lb.history):
            assert hb["loss"] == pytest.approx(ha["loss"], rel=1e-2), (la.name, ha["epoch"])
            assert hb["lr"] == ha["lr"]
