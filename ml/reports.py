"""Evaluation report: metrics.json, a few PNG figures and a Markdown summary in one folder.

Figures are drawn on ``matplotlib.figure.Figure`` objects with an explicit Agg canvas rather
than through pyplot, so the report works on headless training machines, does not touch the
global pyplot backend or state of whatever process calls it, and leaks no open figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ml.classes import CLASS_NAMES, CLASSES
from ml.metrics import expected_calibration_error, reliability_bins, validate_inputs

_DPI = 120
# Order of the figures in the summary; curves.png is present only when a history is given.
_IMAGE_TITLES = {
    "confusion_matrix": "Confusion matrix",
    "external_confusion_matrix": "Confusion matrix on the photos from other sources",
    "referral_tradeoff": "Referral trade-off: melanomas found against benign photos referred",
    "per_class": "Per-class precision, recall and F1",
    "reliability": "Reliability diagram",
    "curves": "Training curves",
}
# The referral rule's aims, drawn on its trade-off plot.
REFERRAL_SENSITIVITY_AIM = 0.90
REFERRAL_BENIGN_AIM = 0.35


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def _plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: Path) -> None:
    row_totals = cm.sum(axis=1, keepdims=True)
    # Colour by the fraction of each true class, so rare classes (df, vasc) are as readable as
    # the nevus row; the printed numbers stay raw counts.
    normalised = np.divide(cm, row_totals, out=np.zeros(cm.shape), where=row_totals > 0)
    fig = Figure(figsize=(1.0 + 0.8 * len(class_names), 0.8 + 0.75 * len(class_names)))
    ax = fig.add_subplot()
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour, fontsize=9)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, labels=class_names)
    ax.set_yticks(ticks, labels=class_names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix (colour: fraction of true class)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    _save(fig, path)


def _plot_per_class(per_class: Mapping[str, Mapping], path: Path) -> None:
    names = list(per_class)
    x = np.arange(len(names))
    width = 0.27
    fig = Figure(figsize=(max(6.0, 1.1 * len(names)), 4.0))
    ax = fig.add_subplot()
    for offset, key in zip((-width, 0.0, width), ("precision", "recall", "f1"), strict=True):
        ax.bar(x + offset, [per_class[name][key] for name in names], width, label=key)
    # Support under each code, because a perfect score on 3 images means little.
    labels = [f"{name}\n(n={per_class[name]['support']})" for name in names]
    ax.set_xticks(x, labels=labels)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Per-class precision, recall and F1")
    ax.grid(axis="y", alpha=0.3)
    # Outside the axes: inside, it would hide the bars of whichever class sits under it.
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _save(fig, path)


def _plot_reliability(bins: list[dict], ece: float, path: Path) -> None:
    width = bins[0]["upper"] - bins[0]["lower"]
    centres = np.array([(b["lower"] + b["upper"]) / 2 for b in bins])
    counts = np.array([b["count"] for b in bins])
    filled = counts > 0
    accuracy = np.array([b["accuracy"] if b["count"] else 0.0 for b in bins])
    confidence = np.array([b["confidence"] if b["count"] else 0.0 for b in bins])

    fig = Figure(figsize=(5.5, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres[filled], accuracy[filled], width, edgecolor="black", label="accuracy")
    # The gap between each bar and the diagonal is what ECE averages.
    top.bar(
        centres[filled],
        confidence[filled] - accuracy[filled],
        width,
        bottom=accuracy[filled],
        color="red",
        alpha=0.25,
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability diagram (ECE = {ece:.4f})")
    top.legend(loc="upper left", fontsize=8)

    bottom.bar(centres, counts, width, color="grey", edgecolor="black")
    for x, count in zip(centres[filled], counts[filled], strict=True):
        bottom.text(x, count, str(count), ha="center", va="bottom", fontsize=7)
    bottom.set_xlabel("top-class confidence")
    bottom.set_ylabel("count")
    bottom.set_ylim(0, counts.max() * 1.25)
    _save(fig, path)


def _plot_curves(history: Mapping[str, Sequence[float]], path: Path) -> bool:
    """Loss, accuracy (and learning rate, log scale) per epoch; False when history holds none."""
    panels = [
        (name, [key for key in (name, f"val_{name}") if history.get(key)])
        for name in ("loss", "accuracy", "learning_rate")
    ]
    panels = [(name, keys) for name, keys in panels if keys]
    if not any(name != "learning_rate" for name, _ in panels):
        return False
    fig = Figure(figsize=(5.0 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, keys) in zip(axes, panels, strict=True):
        for key in keys:
            values = list(history[key])
            # 1-based epochs; with two phases concatenated the x axis simply runs on.
            ax.plot(range(1, len(values) + 1), values, marker=".", label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(name.replace("_", " "))
        if name == "learning_rate":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _fmt(value) -> str:
    """Numbers for the summary: 4 decimals, 'n/a' for undefined metrics."""
    if value is None:
        return "n/a"
    if isinstance(value, float | np.floating):
        return f"{value:.4f}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=_json_default)
    return str(value)


def _plot_referral_tradeoff(
    curves: Mapping[str, Sequence[Mapping]], chosen: float, path: Path
) -> None:
    """Melanoma sensitivity against the share of benign photos referred, as the malignant
    threshold moves, one line per set; the chosen threshold is marked on each."""
    fig = Figure(figsize=(6.0, 4.6))
    ax = fig.add_subplot()
    for (label, rows), colour in zip(
        curves.items(), ("tab:blue", "tab:red", "tab:green"), strict=False
    ):
        points = [
            (row["benign_referral_rate"], row["melanoma_sensitivity"], row["threshold"])
            for row in rows
            if row.get("melanoma_sensitivity") is not None
            and row.get("benign_referral_rate") is not None
        ]
        if not points:
            continue
        x, y, t = (np.array(v) for v in zip(*points, strict=True))
        ax.plot(x, y, color=colour, label=label)
        at = int(np.argmin(np.abs(t - chosen)))
        ax.plot([x[at]], [y[at]], "o", color=colour)
        ax.annotate(
            f"{y[at]:.0%} / {x[at]:.0%}",
            (x[at], y[at]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
            color=colour,
        )
    ax.axhline(REFERRAL_SENSITIVITY_AIM, color="grey", linestyle=":", linewidth=1)
    ax.axvline(REFERRAL_BENIGN_AIM, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of benign photos referred")
    ax.set_ylabel("share of melanomas referred")
    ax.set_title(f"Referral trade-off (dots: the chosen threshold {chosen:.3f})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a set without melanomas draws no line
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _headline_rows(metrics: Mapping) -> list[str]:
    melanoma = metrics.get("melanoma", {})
    roc_auc = metrics.get("roc_auc", {})
    return [
        f"| Images evaluated (n) | {metrics['n']} |",
        f"| Accuracy | {_fmt(metrics['accuracy'])} |",
        f"| Balanced accuracy (mean recall) | {_fmt(metrics['balanced_accuracy'])} |",
        f"| Macro F1 | {_fmt(metrics['macro_f1'])} |",
        f"| Macro ROC AUC (one-vs-rest) | {_fmt(roc_auc.get('macro'))} |",
        f"| Melanoma sensitivity | {_fmt(melanoma.get('sensitivity'))} |",
        f"| Melanoma specificity | {_fmt(melanoma.get('specificity'))} |",
        f"| Expected calibration error (15 bins) | {_fmt(metrics['ece'])} |",
        f"| Log loss | {_fmt(metrics.get('log_loss'))} |",
    ]


def _referral_rows(metrics: Mapping) -> list[str]:
    referral = metrics.get("referral")
    if not referral:
        return []
    return [
        f"| Melanomas referred (of {referral['melanomas']}) | {_fmt(referral['melanoma_sensitivity'])} |",
        f"| Malignant photos referred | {_fmt(referral['malignant_sensitivity'])} |",
        f"| Benign photos referred | {_fmt(referral['benign_referral_rate'])} |",
        f"| All photos referred | {_fmt(referral['referral_rate'])} |",
    ]


def _subgroup_lines(subgroups: Mapping | None) -> list[str]:
    if not subgroups:
        return []
    lines = [
        "",
        "## Subgroups",
        "",
        f"Flagged when melanoma sensitivity at the referral rule or balanced accuracy falls more than "
        f"{subgroups['flag_points'] * 100:.0f} points below the whole (subgroups with at least "
        f"{subgroups['min_melanomas']} melanomas or {subgroups['min_images']} photos).",
        "",
    ]
    lines += [f"- **{f['label']} {f['value']}**: {f['reason']}" for f in subgroups["flagged"]] or [
        "- No subgroup flagged."
    ]
    for attribute in subgroups["attributes"].values():
        lines += [
            "",
            f"| {attribute['label']} | photos | melanomas | balanced accuracy | melanomas referred | flag |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for group in attribute["groups"]:
            lines.append(
                f"| {group['value']} | {group['n']} | {group['melanomas']} | "
                f"{_fmt(group['balanced_accuracy'])} | {_fmt(group['melanoma_sensitivity'])} | "
                f"{'yes' if group['flags'] else ''} |"
            )
        if attribute["unknown"]:
            lines.append(f"| not recorded | {attribute['unknown']} | | | | |")
    return lines


def render_summary_markdown(
    metrics: Mapping,
    *,
    title: str = "",
    extra: Mapping | None = None,
    images: Mapping[str, str] | None = None,
) -> str:
    """The Markdown summary of ``metrics``; ``images`` maps figure name to relative path."""
    roc_auc = metrics.get("roc_auc", {})
    external = metrics.get("external")
    lines = [f"# {title or 'Evaluation report'}", ""]
    if external:
        lines += [
            f"## Photos from other sources ({external.get('source', 'external set')})",
            "",
            "| Metric | Value |",
            "| --- | --- |",
            *_headline_rows(external),
            *_referral_rows(external),
            "",
            "## Held-out photos of the model's own source",
            "",
        ]
    lines += [
        "| Metric | Value |",
        "| --- | --- |",
        *_headline_rows(metrics),
        *_referral_rows(metrics),
        "",
        "## Per class",
        "",
        "| Class | Diagnosis | Precision | Recall | F1 | ROC AUC | Support |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for code, row in metrics["per_class"].items():
        lines.append(
            f"| {code} | {CLASS_NAMES.get(code, code)} | {_fmt(row['precision'])} "
            f"| {_fmt(row['recall'])} | {_fmt(row['f1'])} | {_fmt(roc_auc.get(code))} "
            f"| {row['support']} |"
        )
    lines += _subgroup_lines(metrics.get("subgroups"))
    if extra:
        lines += ["", "## Run details", ""]
        lines += [f"- **{key}**: {_fmt(value)}" for key, value in extra.items()]
    if images:
        lines += ["", "## Figures"]
        for name, rel_path in images.items():
            caption = _IMAGE_TITLES.get(name, name)
            lines += ["", f"### {caption}", "", f"![{caption}]({rel_path})"]
    return "\n".join(lines) + "\n"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    # Anything else (paths, datetimes) as text: a report written after hours of training should
    # not fail over the type of an informational extra.
    return str(value)


def _external_and_referral_figures(out: Path, metrics: dict, class_names: list[str]) -> dict:
    """The external set's confusion matrix and the referral trade-off, where the metrics have
    them; a figure they lack is removed, so no earlier report's stays beside this summary."""
    paths: dict[str, Path] = {}
    external = metrics.get("external")
    if external:
        paths["external_confusion_matrix"] = out / "external_confusion_matrix.png"
        _plot_confusion_matrix(
            np.asarray(external["confusion_matrix"]),
            class_names,
            paths["external_confusion_matrix"],
        )
    tradeoffs = {
        label: numbers["referral_tradeoff"]
        for label, numbers in (("held-out split", metrics), ("other sources", external or {}))
        if numbers.get("referral_tradeoff")
    }
    rule = metrics.get("referral")
    if tradeoffs and rule is not None and rule.get("threshold") is not None:
        paths["referral_tradeoff"] = out / "referral_tradeoff.png"
        _plot_referral_tradeoff(tradeoffs, rule["threshold"], paths["referral_tradeoff"])

    for optional in ("external_confusion_matrix", "referral_tradeoff"):
        if optional not in paths:
            (out / f"{optional}.png").unlink(missing_ok=True)

    return paths


def write_evaluation_report(
    out_dir,
    *,
    metrics: dict,
    y_true,
    probs,
    class_names: Sequence[str] = CLASSES,
    history: dict | None = None,
    title: str = "",
    extra: dict | None = None,
) -> dict[str, str]:
    """Write metrics.json, the figures and summary.md into ``out_dir``; return name -> path.

    ``metrics`` is the output of ``classification_metrics`` for the same ``y_true``/``probs``
    (which are needed again for the reliability diagram). ``history`` is a Keras
    ``History.history`` dict; ``extra`` holds run details such as training time or the split,
    stored under ``"extra"`` in metrics.json and listed in the summary.
    """
    class_names = list(class_names)
    y, p = validate_inputs(y_true, probs, n_classes=len(class_names))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    paths["metrics"] = out / "metrics.json"
    payload = {**metrics, "extra": dict(extra)} if extra else dict(metrics)
    paths["metrics"].write_text(
        json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )

    paths["confusion_matrix"] = out / "confusion_matrix.png"
    _plot_confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), class_names, paths["confusion_matrix"]
    )

    paths.update(_external_and_referral_figures(out, metrics, class_names))

    paths["per_class"] = out / "per_class.png"
    _plot_per_class(metrics["per_class"], paths["per_class"])

    # ECE in the title comes from the probabilities drawn, so title and bars always agree.
    paths["reliability"] = out / "reliability.png"
    _plot_reliability(
        reliability_bins(y, p), expected_calibration_error(y, p), paths["reliability"]
    )

    curves = out / "curves.png"
    if history and _plot_curves(history, curves):
        paths["curves"] = curves
    else:
        # Don't leave a previous run's curves next to a summary that no longer links them.
        curves.unlink(missing_ok=True)

    images = {name: path.name for name, path in paths.items() if path.suffix == ".png"}
    paths["summary"] = out / "summary.md"
    paths["summary"].write_text(
        render_summary_markdown(metrics, title=title, extra=extra, images=images),
        encoding="utf-8",
    )
    return {name: str(path) for name, path in paths.items()}
