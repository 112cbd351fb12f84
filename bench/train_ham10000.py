"""Benchmark: train on the real HAM10000 images with a lesion-grouped split, evaluate on held-out lesions.

    .venv/bin/python -m bench.train_ham10000                       # MobileNetV2, the recorded recipe
    .venv/bin/python -m bench.train_ham10000 --architecture basic_cnn --image-size 64 --head-epochs 8

Measures, in one run on this machine: the input pipeline's throughput against the same model fed from
in-memory tensors, training time, and the metrics of the test split and of the external photos
(`../shared/data/isic2018-test-external`, other sources; never trained on, they also hold the referral
threshold to its melanoma sensitivity; `--external` names another set). Writes the run folder
(bundle + report), and `docs/benchmarks/train_ham10000-<name or architecture>.{json,md}` plus the report's plots, which
docs/model-card.md cites. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOCS = ROOT / "docs" / "benchmarks"


def parse_args(argv=None) -> argparse.Namespace:
    from ml.training_config import add_training_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", dest="data_dir", type=Path, default=SHARED / "data" / "ham10000-200x150"
    )
    add_training_options(parser)
    parser.add_argument(
        "--name",
        default=None,
        help="results name under docs/benchmarks: train_ham10000-NAME.{json,md} "
        "(default: the architecture), so a variant recipe does not overwrite the recorded one",
    )
    parser.add_argument("--throughput-steps", type=int, default=15)
    parser.add_argument(
        "--out", dest="out_dir", type=Path, default=None, help="run folder (default: runs/bench-…)"
    )
    parser.add_argument(
        "--analyse-run",
        type=Path,
        default=None,
        help="only add the decision-rule analysis of a finished run folder to its results JSON "
        "and Markdown page (for runs made before the analysis existed)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only rewrite the Markdown page from a results JSON this benchmark wrote",
    )
    # The recorded recipe: the standard preset of the architecture, unless options say otherwise.
    parser.set_defaults(preset="standard")
    return parser.parse_args(argv)


EXTERNAL = SHARED / "data" / "isic2018-test-external"


def training_config(args: argparse.Namespace, out_dir: Path):
    from ml.training_config import TrainConfig, options_from_args

    weights = Path(os.environ.get("PRETRAINED_WEIGHTS_DIR", SHARED / "weights"))
    external = EXTERNAL if EXTERNAL.is_dir() else None
    options = options_from_args(args, weights_dir=weights, seed=0, external_dir=external)
    return TrainConfig.from_options(options, out_dir=out_dir).validate()


def measure_pipeline(config, samples_train, steps: int) -> dict:
    """Images/s of training steps fed by ml.pipeline.make_dataset vs by one in-memory batch.

    Both use the same model in its phase-1 state, where a step is cheapest and the pipeline most
    likely to be the bottleneck. The pipeline's cache is filled first, as it is after epoch one.
    """
    import numpy as np

    from ml.architectures import freeze_backbone, get_architecture
    from ml.fitting import augmented
    from ml.losses import class_priors, training_loss
    from ml.pipeline import make_dataset
    from ml.pretrained import resolve_weights
    from ml.train import serving_recipe

    run = config.resolve()
    spec = get_architecture(run.architecture)
    weights = resolve_weights(run.architecture, run.weights_dir) if run.pretrained else None
    model = spec.build(7, run.image_size, weights=weights)
    if run.transfer:
        freeze_backbone(model)
    # The same training step as ml.train: augmentation runs inside it, with the run's loss and
    # optimizer.
    model = augmented(model, run.seed, run.colour_jitter, run.random_crops)
    model.compile(
        optimizer=spec.make_optimizer(1e-4, run.weight_decay),
        loss=training_loss(run.label_smoothing, run.loss, class_priors(samples_train)),
    )
    batch_size = run.batch_size
    subset = samples_train[: batch_size * (steps + 2)]
    preprocessing = serving_recipe(run).preprocessing
    ds = make_dataset(subset, preprocessing, batch_size, training=True, seed=run.seed)
    started = time.perf_counter()
    for _ in ds:  # fills the cache: decode + resize of every image once
        pass
    first_pass = time.perf_counter() - started

    def timed(batches) -> float:
        iterator = iter(batches)
        x, y = next(iterator)
        model.train_on_batch(x, y)  # warm-up step (tracing)
        count, started = 0, time.perf_counter()
        for x, y in iterator:
            model.train_on_batch(x, y)
            count += int(x.shape[0])
        return count / (time.perf_counter() - started)

    pipeline = timed(ds.take(steps + 1))
    x = np.random.default_rng(0).uniform(0, 255, (batch_size, run.image_size, run.image_size, 3))
    x = x.astype("float32")
    y = np.array([s.label_index for s in subset[:batch_size]], dtype="int32")
    in_memory = timed([(x, y)] * (steps + 1))
    produce_started = time.perf_counter()
    produced = sum(int(b[0].shape[0]) for b in ds)
    pipeline_alone = produced / (time.perf_counter() - produce_started)
    return {
        "images": len(subset),
        "decode_resize_first_pass_images_per_s": round(len(subset) / first_pass, 1),
        "pipeline_alone_images_per_s": round(pipeline_alone, 1),
        "train_steps_from_pipeline_images_per_s": round(pipeline, 1),
        "train_steps_from_memory_images_per_s": round(in_memory, 1),
        "ratio": round(pipeline / in_memory, 3),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text())
        (DOCS / f"{args.render.stem}.md").write_text(render_markdown(result, args.render.stem))
        return 0
    if not args.data_dir.is_dir():
        raise SystemExit(f"error: dataset folder not found: {args.data_dir}")
    if args.analyse_run:
        return add_decision_rule(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ml.datasets import detect_and_load
    from ml.judge import headline
    from ml.splits import grouped_stratified_split
    from ml.train import train

    stamp = datetime.now(UTC)
    architecture = getattr(args, "architecture", "mobilenet_v2")
    out = args.out_dir or ROOT / "runs" / f"bench-{architecture}-{stamp:%Y%m%d-%H%M%S}"
    config = training_config(args, out)
    print(f"[bench] loading {config.data_dir}", flush=True)
    samples = detect_and_load(config.data_dir)
    split = grouped_stratified_split(
        samples, config.val_fraction, config.test_fraction, config.seed
    )
    print("[bench] measuring the input pipeline against in-memory tensors…", flush=True)
    throughput = measure_pipeline(config, split.train, args.throughput_steps)
    print(f"[bench] {json.dumps(throughput)}", flush=True)

    started = time.monotonic()
    bundle = train(config, progress=True)
    wall = time.monotonic() - started
    manifest = json.loads((bundle / "manifest.json").read_text())
    training = json.loads((bundle / "training.json").read_text())
    metrics = manifest["metrics"]
    result = {
        "command": "python -m bench.train_ham10000 " + " ".join(argv or sys.argv[1:]),
        "date": stamp.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        "config": config.as_json(),
        "split": {k: len(v) for k, v in split.parts().items()},
        "train_wall_seconds": round(wall, 1),
        "fit_seconds": training["seconds"],
        "throughput": throughput,
        "temperature": manifest.get("calibration_temperature"),
        "metrics": metrics,
        "referral_rule": (manifest.get("decision_thresholds") or {}).get("refer"),
        **run_details(training),
    }
    result["decision_rule"] = analyse_decision_rule(out / "report", split)
    write_docs(result, out / "report", results_name(args))
    print(f"[bench] done in {wall / 60:.1f} min", flush=True)
    print(f"[bench] test split: {headline(metrics)}", flush=True)
    if metrics.get("external"):
        print(f"[bench] external ({metrics['external']['source']}): "
              f"{headline(metrics['external'])}", flush=True)  # fmt: skip
    return 0


def add_decision_rule(args: argparse.Namespace) -> int:
    from ml.datasets import detect_and_load
    from ml.splits import grouped_stratified_split

    results = DOCS / f"{results_name(args)}.json"
    result = json.loads(results.read_text())
    if Path(result["config"]["out_dir"]).resolve() != args.analyse_run.resolve():
        raise SystemExit(f"error: {results} records another run: {result['config']['out_dir']}")
    samples = detect_and_load(args.data_dir)
    split = grouped_stratified_split(samples, 0.15, 0.15, result["config"]["seed"])
    result["decision_rule"] = analyse_decision_rule(args.analyse_run / "report", split)
    training = json.loads((args.analyse_run / "bundle" / "training.json").read_text())
    result.update(run_details(training))
    write_docs(result, args.analyse_run / "report", results_name(args))
    return 0


def run_details(training: dict) -> dict:
    """Epochs actually run per phase, and whether the --max-minutes cap ended the run."""
    return {
        "epochs_run": {
            phase["name"]: len(phase["history"].get("loss", [])) for phase in training["phases"]
        },
        "stopped_by_time_budget": bool(training.get("stopped_by_time_budget")),
    }


def analyse_decision_rule(report_dir: Path, split) -> dict:
    """Accuracy vs balanced accuracy as the decision moves towards rare classes (see
    ml.operating_points); tau is chosen on validation, then read off on test."""
    import numpy as np

    from ml.calibration import calibrate
    from ml.classes import CLASSES, NUM_CLASSES
    from ml.operating_points import best_tau, decision_metrics, plot_tradeoff, tradeoff_curve
    from ml.train import PREDICTIONS_FILE

    saved = np.load(report_dir / PREDICTIONS_FILE)
    temperature = float(saved["temperature"])
    counts = np.bincount([s.label_index for s in split.train], minlength=NUM_CLASSES)
    priors = counts / counts.sum()

    val = tradeoff_curve(
        saved["val_labels"], calibrate(saved["val_probs"], temperature), priors, CLASSES
    )
    test_probs = calibrate(saved["eval_probs"], temperature)
    test = tradeoff_curve(saved["eval_labels"], test_probs, priors, CLASSES)
    tau = best_tau(val)
    plot_tradeoff(
        {"validation": val, "test": test},
        tau,
        report_dir / "decision_tradeoff.png",
        targets={"accuracy": 0.86, "balanced_accuracy": 0.75},
    )
    at_tau = next(row for row in test if row["tau"] == tau)
    return {
        "train_priors": {c: round(float(p), 4) for c, p in zip(CLASSES, priors, strict=True)},
        "tau_chosen_on_validation": tau,
        "test_at_tau": at_tau,
        "test_at_argmax": decision_metrics(
            saved["eval_labels"], test_probs.argmax(axis=1), CLASSES
        ),
        "validation_curve": val,
        "test_curve": test,
    }


def results_name(args: argparse.Namespace) -> str:
    return f"train_ham10000-{args.name or getattr(args, 'architecture', 'mobilenet_v2')}"


def write_docs(result: dict, report_dir: Path, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    for png in sorted(report_dir.glob("*.png")):
        shutil.copyfile(png, DOCS / f"{name}-{png.name}")
    (DOCS / f"{name}.md").write_text(render_markdown(result, name))


def render_markdown(result: dict, name: str) -> str:
    c = result["config"]
    images = sorted(p.name for p in DOCS.glob(f"{name}-*.png"))
    m = result["metrics"]
    t = result["throughput"]
    phases = (
        f"{c['head_epochs']} head epoch(s) at lr {c['learning_rate'] or 'default'}, "
        f"{c['fine_tune_epochs']} fine-tune epoch(s) of the top {c['fine_tune_layers']} layers at lr "
        f"{c['fine_tune_learning_rate']}"
        if c["architecture"] != "basic_cnn"
        else f"{c['head_epochs']} epoch(s) at lr {c['learning_rate'] or 'default'}"
    )
    ran = result.get("epochs_run")
    if ran:
        phases += f" (ran {', '.join(f'{n} {name}' for name, n in ran.items())}"
        phases += ", stopped by the time cap)" if result.get("stopped_by_time_budget") else ")"
    lines = [
        f"# Benchmark: {c['architecture']} on HAM10000 (lesion-grouped split)",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}; machine: {result['machine']}  ",
        f"Recipe: {c['architecture']} at {c['image_size']} px, batch {c['batch_size']}, {phases}, "
        f"{c.get('schedule', 'plateau')} schedule, cap {c.get('max_minutes') or 'none'} min, "
        f"class weighting {c['class_weighting']}, {regularisers(c)}, {recipe_steps(c)}, seed {c['seed']}  ",
        f"Split (images): {result['split']}; training {result['train_wall_seconds'] / 60:.1f} min wall "
        f"({result['fit_seconds'] / 60:.1f} min in fit)",
        "",
        *_headline_table(m, result["temperature"]),
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for cls, row in m["per_class"].items():
        lines.append(
            f"| {cls} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        )
    lines += _decision_rule_lines(result.get("decision_rule"))
    lines += _referral_lines(m, result.get("referral_rule"))
    flagged = (m.get("subgroups") or {}).get("flagged")
    if m.get("subgroups"):
        lines += ["", "Subgroups of the test split (`ml.subgroups`):", ""]
        lines += [f"- flagged: {f['label']} {f['value']}: {f['reason']}" for f in flagged] or [
            "- no subgroup flagged"
        ]
    lines += [
        "",
        "Input pipeline (training steps, images/s): "
        f"from the tf.data pipeline {t['train_steps_from_pipeline_images_per_s']}, "
        f"from in-memory tensors {t['train_steps_from_memory_images_per_s']}, "
        f"ratio **{t['ratio']:.2f}**; the pipeline alone produces {t['pipeline_alone_images_per_s']} images/s "
        f"(first, uncached pass: {t['decode_resize_first_pass_images_per_s']} images/s).",
        "",
    ]
    lines += [f"![{file.removeprefix(name + '-').removesuffix('.png')}]({file})" for file in images]
    return "\n".join(lines) + "\n"


def _decision_rule_lines(rule: dict | None) -> list[str]:
    """The top-class rule's line and table, when the run chose one."""
    if not rule:
        return []
    plain, shifted = rule["test_at_argmax"], rule["test_at_tau"]
    return [
        "",
        "Decision rule (`ml.operating_points`): dividing the calibrated probabilities by the "
        f"training class frequencies to the power tau; tau = {rule['tau_chosen_on_validation']:g} "
        "maximises balanced accuracy on validation. On test:",
        "",
        "| rule | accuracy | balanced accuracy | melanoma sensitivity |",
        "|---|---|---|---|",
        f"| most probable class (tau 0) | {plain['accuracy']:.3f} | "
        f"{plain['balanced_accuracy']:.3f} | {fmt(plain['melanoma_sensitivity'])} |",
        f"| tau {rule['tau_chosen_on_validation']:g} | {shifted['accuracy']:.3f} | "
        f"{shifted['balanced_accuracy']:.3f} | {fmt(shifted['melanoma_sensitivity'])} |",
    ]


def _referral_lines(m: dict, chosen: dict | None) -> list[str]:
    """The referral rule's sentence and its table per set, when the run chose one."""
    referral = m.get("referral")
    if not (referral and chosen):
        return []
    val = chosen["validation"]
    outside = (m.get("external") or {}).get("referral")
    chosen_on = "validation and the external photos" if chosen.get("external") else "validation"
    return [
        "",
        f"Referral rule (`ml.referral`, recorded in the bundle): refer when P(mel) + P(bcc) + "
        f"P(akiec) >= {chosen['malignant_threshold']:.3f} (chosen on {chosen_on} for "
        f"{chosen['target_melanoma_sensitivity']:.0%} melanoma sensitivity plus a "
        f"{chosen['margin'] * 100:.0f}-point margin) or the top class is below "
        f"{chosen['min_confidence']:.0%}.",
        "",
        "| referral (share of photos referred) | validation | test (held out) |"
        + (" external photos |" if outside else ""),
        "|---|---|---|" + ("---|" if outside else ""),
        *(
            f"| {label} | {val[key]:.3f} | {referral[key]:.3f} |"
            + (f" {outside[key]:.3f} |" if outside else "")
            for key, label in (
                ("melanoma_sensitivity", f"melanomas ({referral['melanomas']} on test)"),
                ("malignant_sensitivity", "malignant photos (mel, bcc, akiec)"),
                ("benign_referral_rate", "benign photos"),
                ("referral_rate", "all photos"),
                ("referred_as_unsure", "referred only as unsure"),
            )
        ),
    ]


def _headline_table(m: dict, temperature: float) -> list[str]:
    """The headline metrics, for the test split and, when measured, the external photos."""
    sets = [("test split", m)] + ([("external photos", m["external"])] if m.get("external") else [])
    rows = [
        ("accuracy", lambda x: fmt(x["accuracy"])),
        ("balanced accuracy", lambda x: fmt(x["balanced_accuracy"])),
        ("macro F1", lambda x: fmt(x["macro_f1"])),
        ("macro ROC AUC", lambda x: fmt(x["roc_auc"].get("macro"))),
        (
            "melanoma sensitivity / specificity (named class)",
            lambda x: f"{fmt(x['melanoma']['sensitivity'])} / {fmt(x['melanoma']['specificity'])}",
        ),
        (
            f"expected calibration error (after temperature {temperature:.2f})",
            lambda x: fmt(x["ece"]),
        ),
    ]
    lines = [
        "| metric | " + " | ".join(name for name, _ in sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    lines += [f"| {label} | " + " | ".join(cell(x) for _, x in sets) + " |" for label, cell in rows]
    if m.get("external"):
        lines.append("")
        lines.append(
            f"External photos: {m['external'].get('source')} ({m['external']['n']} photos)."
        )
    return lines


def recipe_steps(config: dict) -> str:
    """The framing, colour, view, naming and loss choices of a recipe (older results: the defaults)."""
    return (
        f"fit {config.get('fit', 'stretch')}"
        f"{', random crops' if config.get('random_crops') else ''}, colour constancy "
        f"{config.get('colour_constancy', 'none')}, test-time views {config.get('tta', 'none')}, "
        f"top class {config.get('top_class', 'most_probable')}, loss {config.get('loss', 'crossentropy')}"
    )


def regularisers(config: dict) -> str:
    """The optional regularisers a recipe used, for its one-line description."""
    used = [
        f"{label} {config[key]:g}"
        for key, label in (
            ("label_smoothing", "label smoothing"),
            ("weight_decay", "weight decay"),
            ("colour_jitter", "colour jitter"),
        )
        if config.get(key)
    ]
    return ", ".join(used) if used else "no label smoothing, weight decay or colour jitter"


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
