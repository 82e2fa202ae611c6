"""The benchmark command runs and reports figures that hang together (CPU, tiny sizes)."""
import json

import kdlib.runs.bench_cli as bench


def test_levers_report_on_cpu(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--device", "cpu", "--only", "levers", "--batch-size", "8", "--steps", "1",
                       "--out", str(out)]) == 0
    r = json.loads(out.read_text())["levers"]
    assert r["measured_peak"]["flop_per_s"] > 1e8
    lenet = r["models"]["lenet"]
    # FLOPs of a LeNet training step at 3x32x32: 3 x the forward's multiply-adds x 2 (hand count ~0.65 M MACs)
    assert 3.0e6 < lenet["train_flop_per_image"] < 4.5e6
    plain = lenet["variants"]["plain"]
    assert plain["images_per_s"] == 8 / plain["seconds_per_step"]
    assert plain["mfu_measured"] == plain["images_per_s"] * lenet["train_flop_per_image"] / r["measured_peak"]["flop_per_s"]
    assert "graphed" not in lenet["variants"]  # CUDA only
    assert set(r["stacked"]) == {"1", "6"} and all(v["speedup"] > 0 for v in r["stacked"].values())
    # the pipeline's own epoch with each engine (graphs: CUDA only); 20 images at batch 8: two full batches
    # and a short one, so both static batch shapes are used
    pipe = r["pipeline"]
    assert pipe["images"] == 20 and set(pipe["groups"]) == {"resnet18 teacher", "lenet+alexnet students"}
    for g in pipe["groups"].values():
        assert set(g["engines"]) == {"plain", "static"}
        for engine, row in g["engines"].items():
            assert row["engine_used"] == engine and row["epoch_seconds"] > 0
            assert len(next(iter(row["losses"].values()))) == pipe["epochs"]
        # the static engine is the plain step on other buffers: the same loss curve up to float rounding
        assert g["engines"]["static"]["max_rel_loss_diff"] < 1e-2
    text = capsys.readouterr().out
    assert "measured peak" in text and "LeNets in one vmap step" in text and "Pipeline epoch" in text


def test_bench_runs_on_any_checkout_with_the_fixture(tmp_path, monkeypatch, capsys):
    """No CIFAR-10, no Debian Fashion-MNIST: --dataset auto falls back to the committed fixture."""
    import kdlib.data.registry as REG

    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setitem(REG.SYSTEM_DIRS, "fashion-mnist", [])
    out = tmp_path / "b.json"
    assert bench.main(["--device", "cpu", "--only", "loader", "--subset", "2", "--batch-size", "8",
                       "--out", str(out)]) == 0
    r = json.loads(out.read_text())["loader"]
    assert r["dataset"] == "fashion-mnist" and r["n_images"] == 20
    assert "Loader benchmark: fashion-mnist" in capsys.readouterr().out


def test_bench_errors_are_one_line(tmp_path, capsys):
    assert bench.main(["--device", "cpu", "--dataset", "cifar10", "--root", str(tmp_path), "--only", "loader"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no copy of cifar10") and "Fix:" in err
