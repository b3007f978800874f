"""Metrics on hand-computed examples; `evaluate` on small trees of real photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from face_recognizer.cli import cli
from face_recognizer.engine import Engine
from face_recognizer.evaluation import metrics
from face_recognizer.evaluation.evaluate import evaluate, split_dataset
from face_recognizer.images import read_image
from face_recognizer.samples import sample_path

# -- metrics ---------------------------------------------------------------------------------


def test_roc_and_auc_by_hand() -> None:
    # genuine 0.9, 0.7; impostor 0.8, 0.6: 3 of 4 genuine/impostor pairs ordered right
    roc = metrics.roc_curve(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0]))
    np.testing.assert_allclose(roc.fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(roc.tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(roc.thresholds[1:], [0.9, 0.8, 0.7, 0.6])
    assert roc.auc == pytest.approx(0.75)
    # a tie counts half
    assert metrics.roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="genuine"):
        metrics.roc_curve(np.array([0.1, 0.2]), np.array([1, 1]))


def test_tpr_at_far_by_hand() -> None:
    impostors = np.arange(1, 11) / 10.0  # 0.1 ... 1.0
    genuine = np.array([0.95, 0.92, 0.85])
    # FAR 10% of 10 impostors: one may pass (1.0); the threshold lies just above 0.9
    rate = metrics.tpr_at_far(genuine, impostors, 0.1)
    assert rate.threshold == pytest.approx(0.9)
    assert rate.threshold > 0.9
    assert rate.rate == pytest.approx(2 / 3)
    assert rate.impostors == 10
    assert rate.supported
    # FAR 1% of 10 impostors cannot be measured: none may pass, and it is marked so
    rate = metrics.tpr_at_far(genuine, impostors, 0.01)
    assert rate.threshold > 1.0
    assert rate.rate == 0.0
    assert not rate.supported
    assert metrics.threshold_at_far(np.array([0.3]), 1.0) == -math.inf


def test_tir_at_far_by_hand() -> None:
    scores = np.array([0.8, 0.6, 0.9])
    correct = np.array([True, True, False])  # the 0.9 probe was named wrongly
    strangers = np.array([0.5, 0.7, 0.3, 0.2])
    at_25 = metrics.tir_at_far(scores, correct, strangers, 0.25)  # 0.7 passes: t > 0.5
    assert at_25.rate == pytest.approx(2 / 3)
    assert at_25.supported
    at_10 = metrics.tir_at_far(scores, correct, strangers, 0.1)  # nobody passes: t > 0.7
    assert at_10.rate == pytest.approx(1 / 3)
    assert not at_10.supported
    assert metrics.rank1_accuracy(np.array(["a", "b", "c"]), np.array(["a", "b", "x"])) == (
        pytest.approx(2 / 3)
    )


def test_pair_scores_and_balanced_threshold() -> None:
    emb = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    same, different = metrics.pair_scores(emb, np.array(["a", "a", "b"]))
    np.testing.assert_allclose(same, [0.8])
    np.testing.assert_allclose(sorted(different), [0.0, 0.6])
    # genuine 0.8 vs impostors 0.0, 0.6: perfect split anywhere in (0.6, 0.8]
    assert metrics.best_balanced_threshold(same, different) == pytest.approx(0.7)


# -- evaluate on real photos -------------------------------------------------------------------

# t1.jpg: six people; boxes as pinned in test_engine.py.
T1_BOXES = [
    (745, 342, 847, 480),
    (463, 266, 572, 415),
    (55, 260, 168, 397),
    (906, 59, 1011, 206),
    (1130, 272, 1227, 400),
    (270, 144, 371, 270),
]


def _crop(image: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    x1, y1, x2, y2 = box
    mx, my = int((x2 - x1) * margin), int((y2 - y1) * margin)
    h, w = image.shape[:2]
    return image[max(0, y1 - my) : min(h, y2 + my), max(0, x1 - mx) : min(w, x2 + mx)]


@pytest.fixture(scope="module")
def bundled_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six people of t1.jpg, four photos each (crop, mirror, smaller, darker); the three
    Spurs players of gdp.jpg as strangers."""
    root = tmp_path_factory.mktemp("tree")
    t1 = read_image(sample_path("t1.jpg"))
    for i, box in enumerate(T1_BOXES):
        person = root / "people" / f"person{i}"
        person.mkdir(parents=True)
        face = _crop(t1, box, 0.4)
        cv2.imwrite(str(person / "a.png"), face)
        cv2.imwrite(str(person / "b.png"), cv2.flip(face, 1))
        cv2.imwrite(str(person / "c.png"), cv2.resize(face, None, fx=0.7, fy=0.7))
        cv2.imwrite(str(person / "d.png"), (face * 0.6).astype(np.uint8))
    gdp = read_image(sample_path("gdp.jpg"))
    for name, box in {
        "duncan": (348, 116, 413, 206),
        "ginobili": (129, 38, 194, 118),
        "parker": (267, 57, 329, 154),
    }.items():
        (root / "strangers" / name).mkdir(parents=True)
        cv2.imwrite(str(root / "strangers" / name / "1.png"), _crop(gdp, box, 0.3))
    return root / "people", root / "strangers"


def test_evaluate_bundled_tree(engine: Engine, bundled_tree: tuple[Path, Path]) -> None:
    people, strangers = bundled_tree
    split = split_dataset(people, 1, strangers)
    assert (len(split.people), len(split.enrol), len(split.probes), len(split.strangers)) == (
        6,
        6,
        18,
        3,
    )
    done: list[int] = []
    report = evaluate(engine, split, 0.4, on_progress=done.append)
    assert sum(done) == 6 + 18 + 3
    # one of the six first photos shows a face turned too far to enrol (as `import` would
    # refuse it): that person's three probes have nobody to be compared with
    assert report.rejected_enrol == {"turned too far": 1}
    assert [(Path(item).name, why) for item, why in report.skipped] == [
        ("a.png", "turned too far"),
        ("b.png", "a probe of someone with no usable enrolment photo"),
        ("c.png", "a probe of someone with no usable enrolment photo"),
        ("d.png", "a probe of someone with no usable enrolment photo"),
    ]
    assert report.enrolled_people == 5
    assert report.enrolled_photos == 5
    assert report.probes == 15
    assert report.strangers == 3
    assert report.no_face == 0
    assert report.rank1 == 1.0
    # 5 people x 4 photos: 30 same-person pairs; + 3 strangers: 23 photos, 253 pairs
    assert report.same_scores.size == 30
    assert report.different_scores.size == 223
    assert report.same_scores.min() == pytest.approx(0.928, abs=0.02)
    assert report.different_scores.max() == pytest.approx(0.199, abs=0.02)
    assert report.auc == pytest.approx(1.0)
    # FAR 10% of 3 strangers is not measurable: marked, not hidden
    assert [r.supported for r in report.open_set] == [False, False, False]
    assert report.current.known_correct == 1.0
    assert report.current.strangers_accepted == 0.0
    assert [m.method for m in report.methods] == [
        "majority vote",
        "nearest neighbour",
        "mean template",
    ]
    assert all(m.rank1 == 1.0 for m in report.methods)
    # the FAISS matcher and the exact numpy vote agree at the current threshold
    assert report.methods[0].at_current == report.current
    # suggested: just above the most similar of 223 different-person pairs
    assert report.suggested.threshold == pytest.approx(
        report.different_scores.max() + 0.0005, abs=0.001
    )
    assert report.suggested.pair_far == 0.0


def test_cli_evaluate_report_json_apply(bundled_tree: tuple[Path, Path], tmp_path: Path) -> None:
    from face_recognizer import __version__
    from face_recognizer.matcher import DEFAULT_THRESHOLD

    people, strangers = bundled_tree
    db = tmp_path / "db"
    out = tmp_path / "report"
    args = ["evaluate", str(people), "--unknowns", str(strangers), "--enrol", "1"]
    args += ["--report", str(out), "--json", "--apply", "--db", str(db), "--ctx", "-1"]
    result = CliRunner().invoke(cli, args, prog_name="face-recognizer")
    assert result.exit_code == 3, result.output  # finished; person3's photos were skipped
    answer = json.loads(result.stdout)
    assert [(Path(s["item"]).parent.name, s["reason"]) for s in answer["skipped"]] == [
        ("person3", "turned too far"),
        *[("person3", "a probe of someone with no usable enrolment photo")] * 3,
    ]
    # where the numbers came from, so that two reports can be compared
    assert answer["version"] == __version__
    assert answer["model_pack"] == "buffalo_sc"
    assert answer["command"].startswith("face-recognizer evaluate " + str(people))
    assert "--unknowns " + str(strangers) in answer["command"]
    assert "--enrol 1" in answer["command"]
    assert answer["threshold"] == {"value": DEFAULT_THRESHOLD, "origin": "default"}
    assert answer["folder"] == str(people.resolve())
    assert answer["unknowns"] == str(strangers.resolve())
    assert answer["date"].endswith("+00:00")
    # the headline is the shipped decision: the vote at the threshold in use
    assert answer["decision"]["method"] == "majority vote"
    assert answer["decision"]["threshold"] == DEFAULT_THRESHOLD
    assert answer["decision"]["known_correct"] == 1.0
    assert answer["decision"]["strangers_accepted"] == 0.0
    assert answer["rank1"] == 1.0
    assert answer["probes"] == 15
    assert answer["strangers"] == 3
    assert answer["pairs"]["different"] == 223
    assert answer["pairs"]["lowest_fpr"] == pytest.approx(1 / 223)
    assert [p["far"] for p in answer["pairs"]["tpr_at_fpr"]] == [
        0.5,
        0.25,
        0.1,
        0.05,
        0.01,
        0.005,
        0.001,
    ]
    # 223 pairs resolve FPR 0.5% (>= 200) but not 0.1%
    assert [p["supported"] for p in answer["pairs"]["tpr_at_fpr"]][-2:] == [True, False]
    assert sorted(p.name for p in out.iterdir()) == ["ROC.png", "histograms.png", "summary.md"]
    assert read_image(out / "ROC.png").shape == (520, 720, 3)
    summary = (out / "summary.md").read_text()
    assert summary.startswith(f"## evaluate {people.name} + {strangers.name}\n")
    for fact in (
        f"- version: face-recognizer {__version__}, model pack buffalo_sc",
        f"- command: {answer['command']}",
        f"- date: {answer['date']}",
        f"- data: {people.resolve()} (strangers: {strangers.resolve()})",
        f"- threshold: {DEFAULT_THRESHOLD:.3f} (built-in default), k = 5 neighbours vote",
        "- probes named correctly: 100.0% (15 of 15)",
        "- strangers named: 0.0% (0 of 3)",
        # 3 strangers cannot measure a rate at FAR 1%: no figure
        "| majority vote (recognize) | 100.0% | 0.0% | 0.0% | 100.0% | - |",
        "223 pairs resolve false-accept rates down to 0.0045, so the ROC stops there",
        "| 0.1% | - | - | 223 |\n\nAt 0.1%: not measurable, 223 pairs resolve rates down to "
        "0.0045 only.",
    ):
        assert fact in summary
    assert summary.index("What recognize decides") < summary.index("Compared with")
    no_enrolment = "a probe of someone with no usable enrolment photo"
    assert summary.endswith(
        "Skipped 4 (left out of every figure above):\n\n"
        f"- {str(people / 'person3' / 'a.png')!r}: turned too far\n"
        + "".join(
            f"- {str(people / 'person3' / n)!r}: {no_enrolment}\n"
            for n in ("b.png", "c.png", "d.png")
        )
    )
    # --apply stored the suggestion; verify and recognize now use it
    from face_recognizer.verify import resolve_threshold

    assert resolve_threshold(None, db) == (
        pytest.approx(answer["suggested"]["threshold"]),
        "gallery",
    )


def test_cli_evaluate_prints_aligned_plain_text(bundled_tree: tuple[Path, Path]) -> None:
    """The terminal gets aligned columns, not Markdown; the shipped decision comes first."""
    people, strangers = bundled_tree
    args = ["evaluate", str(people), "--unknowns", str(strangers), "--enrol", "1"]
    result = CliRunner().invoke(cli, [*args, "--threshold", "0.3", "--ctx", "-1"])
    assert result.exit_code == 3, result.output
    text = result.stdout
    assert "|" not in text
    assert "**" not in text
    assert "---" not in text
    assert "#" not in text
    lines = text.splitlines()
    assert lines[0] == f"evaluate {people.name} + {strangers.name}"
    assert "  At 0.1%: not measurable, 223 pairs resolve rates down to 0.0045 only." in lines
    skipped = lines.index("Skipped 4 (left out of every figure above):")
    assert lines[skipped + 1] == f"  {str(people / 'person3' / 'a.png')!r}  turned too far"
    assert len(lines) == skipped + 5
    assert "  threshold  0.300 (--threshold), k = 5 neighbours vote" in lines
    headline = lines.index(
        "What recognize decides (majority vote of 5 neighbours at threshold 0.300):"
    )
    assert lines[headline + 1 : headline + 5] == [
        "  probes named correctly  100.0% (15 of 15)",
        "  named as someone else     0.0% (0 of 15)",
        "  called Unknown            0.0% (0 of 15)",
        "  strangers named           0.0% (0 of 3)",
    ]
    # every table's columns line up: each cell ends where its header ends
    table = lines.index(next(line for line in lines if line.lstrip().startswith("method")))
    header = lines[table]
    ends = [header.index(h) + len(h) for h in ("named correctly", "named wrongly", "rank-1")]
    rows = lines[table + 1 : table + 4]
    assert [row.lstrip().split("  ")[0] for row in rows] == [
        "majority vote (recognize)",
        "nearest neighbour",
        "mean template",
    ]
    for row in rows:
        assert len(row) >= max(ends)
        for end in ends:
            assert row[end - 1] == "%"
            assert row[end] == " "


def test_roc_plot_starts_at_the_lowest_resolvable_rate() -> None:
    """The axis starts at 1 / impostors: the curve is drawn from the left edge of the plot."""
    from face_recognizer.evaluation.plots import BLACK, roc_plot

    # 4 impostors resolve FAR 0.25 at best; half the genuine scores pass before any of them
    roc = metrics.roc_curve(
        np.array([0.9, 0.85, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]), np.array([1, 1, 0, 1, 1, 0, 0, 0])
    )
    image = roc_plot(roc, impostors=4)
    h = image.shape[0]
    # plot area: x from 80 (FAR 1/4), y from h - 60 (TPR 0) up to 70 (TPR 1)
    y_half = round((h - 60 + 70) / 2)
    # the (black) curve runs up the left edge (FAR 1/4) from TPR 0.5, two pixels wide over
    # the one-pixel frame: beside the frame, only from TPR 0.5 up
    assert tuple(int(v) for v in image[y_half - 3, 81]) == BLACK
    assert tuple(int(v) for v in image[y_half + 10, 81]) == (255, 255, 255)
    with pytest.raises(ValueError, match="at least 2 impostor"):
        roc_plot(roc, impostors=1)


def test_evaluate_refuses_bad_trees(tmp_path: Path) -> None:
    from face_recognizer.errors import FaceRecognizerError

    with pytest.raises(FaceRecognizerError, match="is not a folder"):
        split_dataset(tmp_path / "missing", 1)
    (tmp_path / "ana").mkdir()
    cv2.imwrite(str(tmp_path / "ana" / "1.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FaceRecognizerError, match="only one person"):
        split_dataset(tmp_path, 1)


def test_evaluate_celeb5_subset(engine: Engine, datasets: Path, tmp_path: Path) -> None:
    """The five celebrities, the first eight web photos each: enrol 3, probe 5."""
    source = datasets / "celeb5_kaggle"
    people = sorted(p.name for p in source.iterdir() if p.is_dir())
    assert len(people) == 5
    for person in people:
        (tmp_path / person).mkdir()
        for photo in sorted((source / person).glob("*.jpg"))[:8]:
            (tmp_path / person / photo.name).write_bytes(photo.read_bytes())
    report = evaluate(engine, split_dataset(tmp_path, 3), 0.4)
    # web photos: six of the fifteen first photos are refused as `import` would refuse them
    assert report.rejected_enrol == {"turned too far": 2, "face too small": 4}
    assert (report.enrolled_people, report.enrolled_photos) == (5, 9)
    assert (report.probes, report.no_face) == (25, 0)
    assert report.rank1 == pytest.approx(0.96)  # 24 of 25
    assert (report.same_scores.size, report.different_scores.size) == (100, 461)
    assert report.auc == pytest.approx(0.964, abs=0.01)
    # the built-in 0.40 leaves 40% of these web photos unknown, naming none wrongly
    assert report.current.known_correct == pytest.approx(0.6, abs=0.05)
    assert report.current.known_wrong == 0.0
    assert report.suggested.threshold == pytest.approx(0.249, abs=0.02)
