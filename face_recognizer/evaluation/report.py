"""What `evaluate` prints and writes: one report, rendered as plain text, Markdown and JSON.

The headline is the decision `recognize` ships: the majority vote of the k nearest enrolled
photos at the threshold in use (`matcher.DEFAULT_THRESHOLD` unless the gallery or --threshold
says otherwise). Nearest neighbour and mean template follow as comparisons. Every rendering
carries where it came from (`Provenance`: version, model pack, command line, threshold, data
folders, date), so that two reports can be compared.

The blocks of the report are built once (`_blocks`); `summary_text` aligns them for a
terminal, `summary_markdown` writes them as Markdown tables for `summary.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from face_recognizer.errors import FaceRecognizerError
from face_recognizer.evaluation import metrics
from face_recognizer.evaluation.evaluate import SUGGEST_FAR
from face_recognizer.images import write_image
from face_recognizer.types import EvaluationReport, RateAtFar, ThresholdResult

ORIGINS = {
    "default": "built-in default",
    "gallery": "the gallery's setting",
    "--threshold": "--threshold",
}


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a report came from.

    Attributes:
        version: face-recognizer's version.
        model_pack: the model pack's name (detector + recognizer).
        command: the command line that reproduces the run.
        threshold: the similarity threshold of the decision; threshold_origin: "default",
            "gallery" or "--threshold".
        k: neighbours that vote.
        folder: the labelled folder (absolute); unknowns: the strangers' folder, or None.
        date: when the run finished, ISO 8601 in UTC.
    """

    version: str
    model_pack: str
    command: str
    threshold: float
    threshold_origin: str
    k: int
    folder: str
    unknowns: str | None
    date: str

    @property
    def title(self) -> str:
        name = Path(self.folder).name
        return f"evaluate {name}" + (f" + {Path(self.unknowns).name}" if self.unknowns else "")


# A block is ("heading", text), ("text", text), ("note", text under a table), ("facts",
# [(key, value)]) or ("table", headers, rows): the first column is a label, the others numbers.
Block = tuple[Any, ...]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _of(fraction: float | None, total: int) -> str:
    if fraction is None:
        return "-"
    return f"{_pct(fraction):>6} ({round(fraction * total)} of {total})"


def _rate(rate: RateAtFar) -> list[str]:
    if not rate.supported:
        return [f"{100 * rate.far:g}%", "-", "-", str(rate.impostors)]
    return [f"{100 * rate.far:g}%", _pct(rate.rate), f"{rate.threshold:.3f}", str(rate.impostors)]


def _unmeasurable(rates: tuple[RateAtFar, ...], kind: str) -> list[Block]:
    """A line under a table naming the rates its data cannot measure ("-" in the table)."""
    low = [f"{100 * r.far:g}%" for r in rates if not r.supported]
    if not low:
        return []
    n = rates[0].impostors
    return [
        (
            "note",
            f"At {', '.join(low)}: not measurable, {n} {kind} resolve rates down to "
            f"{1 / max(1, n):.2g} only.",
        )
    ]


def _threshold_row(label: str, t: ThresholdResult) -> list[str]:
    return [
        label,
        f"{t.threshold:.3f}",
        _pct(t.known_correct),
        _pct(t.known_wrong),
        _pct(t.known_rejected),
        _pct(t.strangers_accepted),
        _pct(t.pair_tar),
        _pct(t.pair_far),
    ]


def _blocks(r: EvaluationReport, p: Provenance) -> list[Block]:
    rejected = ", ".join(f"{n} {why}" for why, n in sorted(r.rejected_enrol.items())) or "none"
    origin = ORIGINS.get(p.threshold_origin, p.threshold_origin)
    d = r.current
    blocks: list[Block] = [
        ("heading", p.title),
        (
            "facts",
            [
                ("version", f"face-recognizer {p.version}, model pack {p.model_pack}"),
                ("command", p.command),
                ("date", p.date),
                ("data", p.folder + (f" (strangers: {p.unknowns})" if p.unknowns else "")),
                ("threshold", f"{p.threshold:.3f} ({origin}), k = {p.k} neighbours vote"),
                (
                    "people",
                    f"{r.people} ({r.enrolled_people} enrolled from their first "
                    f"{r.enrol_per_person} photos: {r.enrolled_photos} photos; refused by the "
                    f"quality check: {rejected})",
                ),
                (
                    "probes",
                    f"{r.probes} of enrolled people, {r.strangers} of strangers; without a face "
                    f"(left out): {r.no_face}; found only after padding: {r.padded}",
                ),
                ("speed", f"{r.photos_per_second:.1f} probe photos per second"),
            ],
        ),
        (
            "text",
            f"What recognize decides (majority vote of {p.k} neighbours at threshold "
            f"{d.threshold:.3f}):",
        ),
        (
            "facts",
            [
                ("probes named correctly", _of(d.known_correct, r.probes)),
                ("named as someone else", _of(d.known_wrong, r.probes)),
                ("called Unknown", _of(d.known_rejected, r.probes)),
                (
                    "strangers named",
                    _of(d.strangers_accepted, r.strangers)
                    if r.strangers
                    else "- (no --unknowns: false accepts not measured)",
                ),
            ],
        ),
        (
            "text",
            f"Compared with other ways of matching (same split, same threshold "
            f"{d.threshold:.3f}; rank-1 ignores the threshold):",
        ),
        (
            "table",
            [
                "method",
                "named correctly",
                "named wrongly",
                "strangers named",
                "rank-1",
                f"TIR at FAR {SUGGEST_FAR:.0%}",
            ],
            [
                [
                    m.method + (" (recognize)" if i == 0 else ""),
                    _pct(m.at_current.known_correct),
                    _pct(m.at_current.known_wrong),
                    _pct(m.at_current.strangers_accepted),
                    _pct(m.rank1),
                    "-"
                    if m.tir_at_far is None or not m.tir_at_far.supported
                    else _pct(m.tir_at_far.rate),
                ]
                for i, m in enumerate(r.methods)
            ],
        ),
        ("text", "The majority vote at the threshold in use and at the suggested one:"),
        (
            "table",
            [
                "",
                "threshold",
                "named correctly",
                "named wrongly",
                "Unknown",
                "strangers named",
                "pair TAR",
                "pair FAR",
            ],
            [_threshold_row("in use", r.current), _threshold_row("suggested", r.suggested)],
        ),
        ("text", f"Suggested threshold: {r.suggested.threshold:.3f} ({r.suggested_basis})."),
    ]
    if r.open_set:
        blocks += [
            (
                "text",
                "Open-set identification by the nearest neighbour (a stranger counts as a false "
                "accept when named):",
            ),
            (
                "table",
                ["FAR", "identified", "threshold", "strangers"],
                [_rate(rate) for rate in r.open_set],
            ),
            *_unmeasurable(r.open_set, "strangers"),
        ]
    else:
        blocks.append(("text", "Open-set identification: not measured (no --unknowns)."))
    lowest = 1.0 / max(1, r.different_scores.size)
    blocks += [
        (
            "text",
            f"Pair verification ({r.same_scores.size} same-person and "
            f"{r.different_scores.size} different-person pairs, ROC-AUC {r.auc:.4f}; "
            f"{r.different_scores.size} pairs resolve false-accept rates down to "
            f"{lowest:.2g}, so the ROC stops there):",
        ),
        (
            "table",
            ["FPR", "TPR", "threshold", "different-person pairs"],
            [_rate(rate) for rate in r.pairs],
        ),
        *_unmeasurable(r.pairs, "pairs"),
    ]
    if r.skipped:
        blocks += [
            ("text", f"Skipped {len(r.skipped)} (left out of every figure above):"),
            # repr: a folder name may hold control characters (that is why it was skipped)
            ("facts", [(repr(item), why) for item, why in r.skipped]),
        ]
    return blocks


def _align(headers: list[str], rows: list[list[str]], indent: str) -> list[str]:
    """Columns two spaces apart: the first (labels) flush left, the numbers flush right."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return (indent + "  ".join([first, *rest])).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def summary_text(report: EvaluationReport, provenance: Provenance) -> str:
    """The report for a terminal: aligned plain text, no Markdown."""
    lines: list[str] = []
    for block in _blocks(report, provenance):
        kind = block[0]
        if kind == "heading":
            lines.append(block[1])
        elif kind == "text":
            lines += ["", block[1]]
        elif kind == "note":
            lines.append("  " + block[1])
        elif kind == "facts":
            width = max(len(key) for key, _ in block[1])
            lines += [f"  {key.ljust(width)}  {value}" for key, value in block[1]]
        else:
            lines += _align(block[1], block[2], "  ")
    return "\n".join(lines) + "\n"


def summary_markdown(report: EvaluationReport, provenance: Provenance) -> str:
    """The report as Markdown (summary.md)."""
    lines: list[str] = []
    for block in _blocks(report, provenance):
        kind = block[0]
        if kind == "heading":
            lines += [f"## {block[1]}", ""]
        elif kind in ("text", "note"):
            lines += [block[1], ""]
        elif kind == "facts":
            lines += [*(f"- {key}: {value.lstrip()}" for key, value in block[1]), ""]
        else:
            headers, rows = block[1], block[2]
            lines += [
                "| " + " | ".join(headers) + " |",
                "|" + "|".join(["---", *["---:"] * (len(headers) - 1)]) + "|",
                *("| " + " | ".join(row) + " |" for row in rows),
                "",
            ]
    return "\n".join(lines)


def _rate_json(rate: RateAtFar) -> dict[str, Any]:
    return {
        "far": rate.far,
        "rate": round(rate.rate, 4),
        "threshold": round(rate.threshold, 4),
        "impostors": rate.impostors,
        "supported": rate.supported,
    }


def _threshold_json(t: ThresholdResult) -> dict[str, Any]:
    return {
        key: (None if value is None else round(float(value), 4))
        for key, value in (
            ("threshold", t.threshold),
            ("known_correct", t.known_correct),
            ("known_wrong", t.known_wrong),
            ("known_rejected", t.known_rejected),
            ("strangers_accepted", t.strangers_accepted),
            ("pair_tar", t.pair_tar),
            ("pair_far", t.pair_far),
        )
    }


def report_json(report: EvaluationReport, provenance: Provenance) -> dict[str, Any]:
    """The report as one JSON-ready object (`evaluate --json`); `decision` is the headline."""
    r, p = report, provenance
    return {
        "version": p.version,
        "model_pack": p.model_pack,
        "command": p.command,
        "date": p.date,
        "folder": p.folder,
        "unknowns": p.unknowns,
        "threshold": {"value": round(p.threshold, 4), "origin": p.threshold_origin},
        "k": p.k,
        "decision": {"method": "majority vote", **_threshold_json(r.current)},
        "people": r.people,
        "enrolled_people": r.enrolled_people,
        "enrol_per_person": r.enrol_per_person,
        "enrolled_photos": r.enrolled_photos,
        "rejected_enrol": r.rejected_enrol,
        "probes": r.probes,
        "strangers": r.strangers,
        "no_face": r.no_face,
        "padded": r.padded,
        "photos_per_second": round(r.photos_per_second, 2),
        "rank1": round(r.rank1, 4),
        "open_set": [_rate_json(rate) for rate in r.open_set],
        "pairs": {
            "same": int(r.same_scores.size),
            "different": int(r.different_scores.size),
            "lowest_fpr": 1.0 / max(1, int(r.different_scores.size)),
            "auc": round(r.auc, 5),
            "tpr_at_fpr": [_rate_json(rate) for rate in r.pairs],
        },
        "current": _threshold_json(r.current),
        "suggested": {**_threshold_json(r.suggested), "basis": r.suggested_basis},
        "methods": [
            {
                "method": m.method,
                "rank1": round(m.rank1, 4),
                "tir_at_far_1pct": None if m.tir_at_far is None else _rate_json(m.tir_at_far),
                "at_current": _threshold_json(m.at_current),
            }
            for m in r.methods
        ],
        "skipped": [{"item": item, "reason": why} for item, why in r.skipped],
    }


def write_report(report: EvaluationReport, provenance: Provenance, out_dir: Path) -> list[Path]:
    """Write ROC.png, histograms.png and summary.md into `out_dir`; returns their paths."""
    from face_recognizer.evaluation.plots import histogram_plot, roc_plot

    same, different = report.same_scores, report.different_scores
    roc = metrics.roc_curve(
        np.r_[same, different], np.r_[np.ones(same.size), np.zeros(different.size)]
    )
    marks = [(report.current.threshold, "in use"), (report.suggested.threshold, "suggested")]
    written = [
        write_image(roc_plot(roc, impostors=different.size, marks=marks), out_dir / "ROC.png"),
        write_image(histogram_plot(same, different, marks=marks), out_dir / "histograms.png"),
    ]
    summary = out_dir / "summary.md"
    try:
        summary.write_text(summary_markdown(report, provenance), encoding="utf-8")
    except OSError as exc:
        raise FaceRecognizerError(f"Could not write {summary}: {exc.strerror}.") from exc
    written.append(summary)
    return written
