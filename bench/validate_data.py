"""4. Validate-data throughput: aimed's validate-data stage vs one raw pass of the same DataLoader.

Dataset: the full MNIST in the tutorial layout (50,000 train, 10,000 validation, 10,000 test
JPEGs; ``prepare_mnist.py --full``), read by the tutorial's tf.data example (DataLoaderTF);
the plain-generator example (DataLoader, skimage) on the 10,000/1,000/1,000-image subset.

- baseline: a raw pass, every split read once through the DataLoader the way a user iterates
  it (``as_numpy_iterator`` for tf.data, ``islice(n)`` for a generator), nothing else;
- raw pass in batches (tf.data only, informative): ``take(n).batch(256).as_numpy_iterator()``,
  which is how aimed reads a tf.data source, so it shows how much of aimed's time is the
  reading itself and how much the checks and hashing add;
- aimed: ``aimed.stages.validate_data.run`` in-process: the layout check of every labels.csv
  row, the DataLoader pass with shape/dtype/label/id checks, the sha256 manifest of every file
  and the report. "cold" deletes the project's file-hash cache first (a first run on new
  data); "warm" keeps it (a rerun).

One process, after a warm-up pass (TensorFlow start-up, OS file cache; in batches for tf.data,
which reads the same files in a quarter of the time), repeats alternate raw, raw in batches
(tf.data) and aimed cold (5 each). Aimed warm (a rerun) runs in quick mode only, to keep
``make bench`` within its budget: the hashes it skips are a thread beside the DataLoader pass,
so it is about as fast as cold. Images/s = images in the three splits / wall time.
"""

from __future__ import annotations

import itertools
import pathlib
import shutil
import tempfile
from typing import Optional

from bench import common

FULL = dict(repeats=5, warm={"tf": 0, "gen": 0}, generator=True)
QUICK = dict(repeats=2, warm={"tf": 1, "gen": 1}, generator=False)
RATIO_GOAL = 1.2
RATE_GOAL = 5000.0
RAW_BATCH = 256


def raw_pass(loader, batch: Optional[int] = None) -> int:
    """Read every split once; a tf.data source in batches of ``batch`` if given."""
    from aimed.data import is_tf_dataset

    count = 0
    for create in (loader.create_training_generator, loader.create_validation_generator, loader.create_test_generator):
        source, n = create()
        if batch and is_tf_dataset(source):
            for x, *_ in source.take(n).batch(batch).as_numpy_iterator():
                count += len(x)
            continue
        iterator = source.as_numpy_iterator() if is_tf_dataset(source) else iter(source)
        for _ in itertools.islice(iterator, n):
            count += 1
    return count


def validate_compare(project: str, run: str, repeats: int, warm: int, batched: bool) -> dict:
    ctx = common.run_context(pathlib.Path(project), run)
    from aimed.stages import validate_data

    images = raw_pass(ctx.data_loader(), RAW_BATCH)          # warm-up
    times = {"raw": [], "raw_batched": [], "aimed_cold": [], "aimed_warm": []}
    for repeat in range(repeats):
        times["raw"].append(common.timed(lambda: raw_pass(ctx.data_loader())))
        if batched:
            times["raw_batched"].append(common.timed(lambda: raw_pass(ctx.data_loader(), RAW_BATCH)))
        shutil.rmtree(ctx.project_dir / ".aimed-cache", ignore_errors=True)
        times["aimed_cold"].append(common.timed(lambda: validate_data.run(ctx)))
        if repeat < warm:
            times["aimed_warm"].append(common.timed(lambda: validate_data.run(ctx)))
        print(f"  {run} repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()
                                                          if len(v) == repeat + 1), flush=True)
    return {"times": times, "images": images}


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    full = common.dataset(**common.SIZES_QUICK) if quick else common.dataset()
    examples = [("tf", "mnist-tf", full)]
    if p["generator"]:
        examples.append(("gen", "mnist-gen", common.dataset(**common.SIZES_10K)))
    measurements, goals, setup = [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        project = common.make_project(pathlib.Path(tmp) / "project", runs={
            name: dict(base=base, data_dir=str(data)) for name, base, data in examples})
        for name, _, data in examples:
            r = common.run_worker("validate_data", "validate_compare", project=str(project), run=name, repeats=p["repeats"],
                                  warm=p["warm"][name], batched=name == "tf")
            med = {k: common.summary(v)["median"] for k, v in r["times"].items() if v}
            n = r["images"]
            setup[name] = {"images": n, "dataset": str(pathlib.Path(data).relative_to(common.REPO))}
            title = "tf.data example" if name == "tf" else "generator example"
            warm = [common.measurement(f"{title}: aimed validate-data, warm hash cache", r["times"]["aimed_warm"], "s",
                                       ratio=common.ratio(med["aimed_warm"], med["raw"]),
                                       images_per_s=n / med["aimed_warm"])] if r["times"]["aimed_warm"] else []
            batched = [common.measurement(f"{title}: raw DataLoader pass in batches of {RAW_BATCH} (informative)",
                                          r["times"]["raw_batched"], "s", ratio=common.ratio(med["raw_batched"], med["raw"]),
                                          images_per_s=n / med["raw_batched"])] if r["times"]["raw_batched"] else []
            measurements += [
                common.measurement(f"{title}, {n:,} images: raw DataLoader pass (baseline)", r["times"]["raw"], "s",
                                   images_per_s=n / med["raw"]),
            ] + batched + [
                common.measurement(f"{title}: aimed validate-data, cold hash cache", r["times"]["aimed_cold"], "s",
                                   ratio=common.ratio(med["aimed_cold"], med["raw"]), images_per_s=n / med["aimed_cold"]),
            ] + warm
            if name == "tf":
                cold = common.ratio(med["aimed_cold"], med["raw"])
                rate = n / med["aimed_cold"]
                vs_batched = common.ratio(med["aimed_cold"], med["raw_batched"])
                goals += [
                    common.goal("validate-data time <= 1.2x one raw DataLoader pass (tf.data, full MNIST, cold)",
                                cold, "<=", RATIO_GOAL, f"{cold:.2f}x ({med['aimed_cold']:.1f} s vs {med['raw']:.1f} s)",
                                note=f"aimed reads in batches; {vs_batched:.2f}x a raw pass in batches "
                                     f"({med['raw_batched']:.1f} s)"),
                    common.goal("validate-data >= 5,000 images/s (tf.data example, 2 cores)", rate, ">=", RATE_GOAL,
                                f"{rate:,.0f} images/s (raw pass {n / med['raw']:,.0f}/s)"),
                ]
    return {
        "name": "validate_data",
        "title": "4. Validate-data throughput",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": setup,
        "measurements": measurements,
        "goals": goals,
    }


if __name__ == "__main__":
    common.worker_main("bench.validate_data")
