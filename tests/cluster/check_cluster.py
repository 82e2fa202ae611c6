"""What `make test-cluster` checks, on the single-node Slurm of scripts/cluster/start.sh (SLURM_CONF set).

Prints one PASS or FAIL line per check and ends with 'N passed, N failed' (exit status 1 when any failed):

  1. the smoke profile's Part II (every run report and chapter) through `snakemake --profile profiles/slurm`
     (layered with tests/cluster/profile: the test node's small resources) finishes, and every report and
     chapter ran as a Slurm job that sacct shows COMPLETED, on the partition profiles/slurm names (reports on
     `gpu` with one GPU, chapters on `cpu`);
  2. the run store it wrote holds the same run ids, with the same metrics.json, as a local
     `python -m kdlib grid --profile smoke` into another store;
  3. each job's log is where the README says: logs/<part>/<notebook>.log (papermill's progress and cell output)
     and logs/slurm/rule_<rule>/<wildcards>/<jobid>.log (Slurm's own);
  4. a job killed mid-training (`scancel --signal=TERM --full`, once its run has written a checkpoint and before
     it finished: the signal Slurm sends at preemption or the time limit) is retried by Snakemake and resumes from that checkpoint to the metrics and history of an uninterrupted local
     run. The smoke runs finish in a second, before their first checkpoint (kdlib.train.loop writes one at an epoch
     end once 60 s have passed, and after the last epoch), so this check trains one teacher of a `cluster-cancel`
     profile written here: the smoke profile with one longer teacher (tests/cluster/cancel.smk runs its report);
  5. requests the cluster cannot satisfy (more memory than the node has, more GPUs than it has) stop Snakemake
     with Slurm's error within a minute or two instead of waiting.

  usage: python tests/cluster/check_cluster.py [--work DIR]   (make test-cluster: scripts/cluster/test.sh)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
SNAKEMAKE = str(Path(PY).parent / "snakemake")
PROFILE = ["--profile", str(REPO / "profiles/slurm"), "--workflow-profile", str(REPO / "tests/cluster/profile")]
CANCEL_EPOCHS = int(os.environ.get("KDC_CANCEL_EPOCHS", "140"))   # ~0.9 s an epoch on one core of the test machine
outcomes: list[bool] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" ({detail})" if detail else ""), flush=True)
    outcomes.append(bool(ok))
    return ok


def env1() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def sacct(start: str) -> dict[str, dict]:
    """Every job of the test cluster since `start` (it is fresh: all of them are this test's), by job id."""
    fields = ["JobID", "JobName", "Partition", "State", "ExitCode", "Elapsed", "AllocTRES", "Comment"]
    out = subprocess.run(["sacct", "-a", "-X", "-n", "-P", "-S", start, "-o", ",".join(fields)],
                         capture_output=True, text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        row = dict(zip(fields, line.split("|")))
        jobs[row["JobID"]] = row
    return jobs


def slurm_logs(work: Path) -> dict[tuple[str, str], list[str]]:
    """(rule, wildcards) -> job ids, from logs/slurm/rule_<rule>/<wildcards>/<jobid>.log (oldest first)."""
    found: dict[tuple[str, str], list[str]] = {}
    for log in sorted((work / "logs/slurm").glob("rule_*/*/*.log"), key=lambda p: int(p.stem)):
        found.setdefault((log.parts[-3][len("rule_"):], log.parts[-2]), []).append(log.stem)
    return found


def store_runs(store: Path, profile: str) -> dict[str, dict]:
    """kind/run_id -> metrics of the finished runs of a run store."""
    return {f"{d.parent.name}/{d.name}": json.loads((d / "metrics.json").read_text())
            for d in sorted((store / profile).glob("*/*")) if (d / "DONE").is_file()}


def diff(a, b, path="") -> list[str]:
    """Where two JSON values differ (exactly: the same code on the same machine, one thread)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def snakemake(args: list[str], log: Path, timeout: int, **kw) -> tuple[int, float, str]:
    t0 = time.monotonic()
    with open(log, "w") as fh:
        try:
            rc = subprocess.run([SNAKEMAKE, *PROFILE, *args], stdout=fh, stderr=subprocess.STDOUT,
                                timeout=timeout, cwd=REPO, env=env1(), **kw).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.monotonic() - t0, log.read_text(errors="replace")


def chapters() -> list[str]:
    m = re.search(r"^CHAPTERS = \[(.*?)\]", (REPO / "Snakefile").read_text(), re.M)
    return re.findall(r'"([a-z]+)"', m.group(1))


def smoke_plan() -> list[str]:
    out = subprocess.run([PY, "-m", "kdlib", "grid", "--profile", "smoke", "--plan"], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    return [t["name"] for t in json.loads(out)]


# ---------------------------------------------------------------------------------------------------------
def check_grid_run(work: Path, start: str):
    """Checks 1-3: the smoke profile's Part II on Slurm, against a local grid run."""
    local = subprocess.Popen([PY, "-m", "kdlib", "grid", "--profile", "smoke", "--runs", str(work / "local-store"),
                              "--no-progress"], stdout=open(work / "local-grid.log", "w"), stderr=subprocess.STDOUT,
                             cwd=REPO, env=env1())
    targets = [f"book/part2/{c}.ipynb" for c in chapters()]
    rc, secs, out = snakemake([*targets, "--directory", str(work / "grid"), "--config", "part2=smoke",
                               f"runs={work / 'slurm-store'}", "threads=1"],
                              work / "snakemake-grid.log", timeout=1500)
    check("smoke Part II through snakemake --profile profiles/slurm", rc == 0,
          f"exit {rc}, {secs:.0f} s; {work / 'snakemake-grid.log'}" + ("" if rc == 0 else ": " + out[-1500:]))
    local_rc = local.wait(timeout=900)
    check("local reference: python -m kdlib grid --profile smoke", local_rc == 0, f"exit {local_rc}")

    jobs = sacct(start)
    logs = slurm_logs(work / "grid")
    reports = smoke_plan()
    expected = [("teacher" if r.startswith("teacher-") else "students", "part2", r.split("-", 1)[1], r)
                for r in reports] + [("chapter", "part2", c, c) for c in chapters()]
    bad, wrong_place, missing_logs, seen = [], [], [], 0
    for rule, part, name, notebook in expected:
        wc = f"{part}_{name}" if rule != "chapter" else f"{name}_{part}"
        ids = logs.get((rule, wc)) or logs.get((rule, f"{name}_{part}")) or logs.get((rule, f"{part}_{name}"))
        if not ids:
            bad.append(f"{rule} {notebook}: no Slurm job log")
            continue
        seen += 1
        job = jobs.get(ids[-1], {})
        if job.get("State") != "COMPLETED":
            bad.append(f"{rule} {notebook}: job {ids[-1]} {job.get('State')}")
        want = "cpu" if rule == "chapter" else "gpu"
        if job.get("Partition") != want or (want == "gpu") != ("gres/gpu=1" in job.get("AllocTRES", "")):
            wrong_place.append(f"{notebook}: job {ids[-1]} on {job.get('Partition')} with {job.get('AllocTRES')}")
        nb_log = work / "grid" / "logs" / part / f"{notebook}.log"
        if not (nb_log.is_file() and nb_log.stat().st_size > 0):
            missing_logs.append(str(nb_log))
        if not (work / "grid" / "logs/slurm" / f"rule_{rule}").is_dir():
            missing_logs.append(f"logs/slurm/rule_{rule}")
    n = len(expected)
    check(f"every run report and chapter ({len(reports)} + {len(chapters())}) ran as a Slurm job sacct shows COMPLETED",
          not bad, "; ".join(bad[:5]) or f"{n} jobs")
    check("reports on partition gpu with one GPU (gres/gpu=1), chapters on partition cpu without",
          seen == len(expected) and not wrong_place, "; ".join(wrong_place[:5]) or f"{seen} jobs")
    check("each job's logs: logs/part2/<notebook>.log and logs/slurm/rule_<rule>/<wildcards>/<jobid>.log",
          seen == len(expected) and not missing_logs, "; ".join(missing_logs[:5]) or f"{seen} jobs")

    slurm_runs, local_runs = store_runs(work / "slurm-store", "smoke"), store_runs(work / "local-store", "smoke")
    check("the Slurm run store holds the same run ids as the local grid run", bool(slurm_runs) and
          set(slurm_runs) == set(local_runs),
          f"{len(slurm_runs)} vs {len(local_runs)} finished runs"
          + "".join(f"; only on Slurm: {sorted(set(slurm_runs) - set(local_runs))[:3]}" * bool(set(slurm_runs) - set(local_runs)))
          + "".join(f"; only local: {sorted(set(local_runs) - set(slurm_runs))[:3]}" * bool(set(local_runs) - set(slurm_runs))))
    differ = {k: diff(slurm_runs[k], local_runs[k]) for k in set(slurm_runs) & set(local_runs)}
    differ = {k: v for k, v in differ.items() if v}
    check("... with the same metrics.json", bool(slurm_runs) and not differ,
          "; ".join(f"{k}: {v[0]}" for k, v in list(differ.items())[:3]) or f"{len(slurm_runs)} runs equal")
    listing = subprocess.run(["sacct", "-a", "-S", start, "-o",
                              "JobID,JobName%10,Partition,AllocCPUS,AllocTRES%42,State,ExitCode,Elapsed,Comment%60"],
                             capture_output=True, text=True).stdout
    (work / "sacct-grid.txt").write_text(listing)
    print(f"sacct listing of the grid run: {work / 'sacct-grid.txt'}", flush=True)


def cancel_grid(path: Path):
    """grid.yaml with one more profile, `cluster-cancel`: the smoke profile's one plain teacher, trained for
    CANCEL_EPOCHS epochs (~2 min on one core) so that it writes checkpoints before it ends."""
    grid = yaml.safe_load((REPO / "grid.yaml").read_text())
    smoke = grid["profiles"]["smoke"]
    grid["profiles"]["cluster-cancel"] = {
        **smoke, "description": "make test-cluster: one smoke teacher that outlives its first checkpoint",
        "experiments": ["E1"], "models": {**smoke["models"], "resnet18": {"width": 8}},
        "datasets": {**smoke["datasets"], "main": {"name": "fashion-mnist", "subset": 30, "test_subset": 10}},
        "recipes": {**smoke["recipes"], "teacher": {**smoke["recipes"]["teacher"], "epochs": CANCEL_EPOCHS}}}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))


def check_cancel(work: Path, start: str):
    """Check 4: scancel mid-training; Snakemake's retry resumes from the checkpoint to identical results."""
    import torch

    grid, store, local_store = work / "grid-cancel.yaml", work / "cancel-store", work / "cancel-local-store"
    cancel_grid(grid)
    task = "teacher-main-resnet18-none"
    local = subprocess.Popen([PY, "-m", "kdlib", "grid", "--grid", str(grid), "--profile", "cluster-cancel",
                              "--task", task, "--runs", str(local_store), "--no-progress"],
                             stdout=open(work / "cancel-local.log", "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env1())
    log = work / "snakemake-cancel.log"
    t0 = time.monotonic()
    proc = subprocess.Popen([SNAKEMAKE, "-s", str(REPO / "tests/cluster/cancel.smk"), *PROFILE,
                             "--directory", str(work / "cancel"),
                             "--config", f"grid={grid}", f"runs={store}", f"task={task}"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env1())
    cancelled, epoch, seen, why = None, None, [], "no checkpoint before the run finished (raise KDC_CANCEL_EPOCHS)"
    while proc.poll() is None and time.monotonic() - t0 < 900:
        runs = [d for d in (store / "cluster-cancel" / "teacher").glob("*") if d.is_dir()]
        if runs and (runs[0] / "DONE").exists():
            break
        if runs and (runs[0] / "checkpoint.pt").exists():
            queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True,
                                   text=True).stdout.split()
            ids = [q.split("|")[0] for q in queue if "rule_teacher" in q]
            if len(ids) == 1:
                state = torch.load(runs[0] / "checkpoint.pt", weights_only=True, map_location="cpu")
                epoch, seen = state["epoch"], [float(h["seconds"]) for h in state["history"]]
                # SIGTERM to every process of the job (batch script and steps), as Slurm does at preemption or the
                # time limit. A plain `scancel` would leave Snakemake waiting for ever: sacct then says
                # "CANCELLED by <uid>", which the executor plugin (2.8.0) does not count among failed states.
                subprocess.run(["scancel", "--signal=TERM", "--full", ids[0]], check=True)
                cancelled = ids[0]
                break
            why = f"running teacher jobs: {queue}"
        time.sleep(0.5)
    try:
        rc = proc.wait(timeout=max(60, 900 - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        proc.terminate()
        rc = 124
    secs = time.monotonic() - t0
    local_rc = local.wait(timeout=900)
    out = log.read_text(errors="replace")
    if not check(f"scancel --signal=TERM of the teacher job after its run's checkpoint (epoch {epoch} of {CANCEL_EPOCHS})",
                 cancelled is not None, f"job {cancelled}" if cancelled else why):
        return
    jobs = sacct(start)
    later = [j for j, row in jobs.items() if int(j) > int(cancelled) and "rule_teacher" in row.get("Comment", "")]
    first = jobs.get(cancelled, {}).get("State", "")
    check("sacct: the killed job FAILED, Snakemake's retry COMPLETED",
          first in ("FAILED", "CANCELLED") and len(later) == 1
          and jobs[later[0]]["State"] == "COMPLETED",
          f"{cancelled} {jobs.get(cancelled, {}).get('State')}; retry "
          + ", ".join(f"{j} {jobs[j]['State']}" for j in later))
    check("snakemake finished after the retry", rc == 0 and "Trying to restart job" in out,
          f"exit {rc}, {secs:.0f} s; {log}")
    run = next((store / "cluster-cancel" / "teacher").glob("*"))
    ref = local_store / "cluster-cancel" / "teacher" / run.name
    ok = local_rc == 0 and (ref / "DONE").exists() and (run / "DONE").exists()
    if not check("local reference run of the same config (python -m kdlib grid --grid ... --task ...)", ok,
                 f"exit {local_rc}, run {run.name}"):
        return
    # Resumed, not retrained: the final history's first epochs carry the very wall times (per-epoch `seconds`, which
    # no rerun reproduces) that the checkpoint held when the job was killed.
    rows = [r.split(",") for r in (run / "history.csv").read_text().splitlines()]
    col = rows[0].index("seconds")
    final = [float(r[col]) for r in rows[1:]]
    check("the retry resumed from the checkpoint (the first epochs' wall times are the killed job's)",
          bool(seen) and final[:len(seen)] == seen and len(final) == CANCEL_EPOCHS,
          f"checkpoint at epoch {epoch}: {len(seen)} epochs' seconds "
          + ("kept" if final[:len(seen)] == seen else "differ"))
    a, b = json.loads((run / "metrics.json").read_text()), json.loads((ref / "metrics.json").read_text())
    d = diff(a, b)
    check("the resumed run's metrics.json equals the uninterrupted run's", not d, "; ".join(d[:3]) or "equal")
    strip = lambda p: [r.rsplit(",", 2)[0] for r in p.read_text().splitlines()]  # drop seconds, images_per_s
    check("... and its history.csv (losses, accuracy, lr of every epoch)",
          strip(run / "history.csv") == strip(ref / "history.csv"),
          f"{len(strip(run / 'history.csv')) - 1} epochs")


def check_unsatisfiable(work: Path):
    """Check 5: requests the node cannot meet are refused at submission, with Slurm's message."""
    target = "book/runs/part2/teacher-main-resnet18-none.ipynb"
    cases = [("more memory than the node has", "teacher:mem_mb=100000000", "Memory specification can not be satisfied"),
             ("more GPUs than the node has", "teacher:gpu=64", "Requested node configuration is not available")]
    for what, res, message in cases:
        tag = res.split(":")[1].split("=")[0]
        rc, secs, out = snakemake([target, "--directory", str(work / f"bad-{tag}"), "--retries", "0",
                                   "--set-resources", res, "teacher:slurm_partition=gpu",
                                   "--config", "part2=smoke", f"runs={work / f'bad-{tag}-store'}", "threads=1"],
                                  work / f"snakemake-bad-{tag}.log", timeout=300)
        check(f"a request for {what} ({res}) stops snakemake with Slurm's error, not a hang",
              rc not in (0, 124) and message in out and secs < 240,
              f"exit {rc} after {secs:.0f} s: '{message}'" + ("" if message in out else " not in its log"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default=str(Path(os.environ.get("KDC_DIR", REPO / ".cluster")) / "work"))
    p.add_argument("--only", nargs="*", default=["grid", "cancel", "unsatisfiable"])
    args = p.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))
    t0 = time.monotonic()
    for name, fn in (("grid", check_grid_run), ("cancel", check_cancel), ("unsatisfiable", check_unsatisfiable)):
        if name in args.only:
            t = time.monotonic()
            try:
                fn(work, start) if name != "unsatisfiable" else fn(work)
            except Exception as err:  # a check that cannot even run is a failure, and the others still run
                check(f"{name}: ran to the end", False, f"{type(err).__name__}: {err}")
            print(f"-- {name}: {time.monotonic() - t:.0f} s", flush=True)
    print(f"{sum(outcomes)} passed, {len(outcomes) - sum(outcomes)} failed ({time.monotonic() - t0:.0f} s)")
    sys.exit(0 if outcomes and all(outcomes) else 1)


if __name__ == "__main__":
    main()
