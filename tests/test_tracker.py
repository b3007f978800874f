"""Tracker: ids across frames on real detections, votes, who gets embedded when."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_recognizer.images import read_image
from face_recognizer.samples import sample_path
from face_recognizer.tracker import Tracker, iou_matrix
from face_recognizer.types import Detections, Match


@pytest.fixture(scope="module")
def six(engine) -> Detections:  # type: ignore[no-untyped-def]
    """The six real faces of t1.jpg."""
    detections = engine.detect(read_image(sample_path("t1.jpg")))
    assert len(detections) == 6
    return detections


def _shifted(d: Detections, dx: float, order: list[int] | None = None) -> Detections:
    shift = np.array([dx, 0, dx, 0], np.float32)
    moved = Detections(d.xyxy + shift, d.scores, d.landmarks + np.array([dx, 0], np.float32))
    return moved[np.array(order)] if order is not None else moved


class Script:
    """identify(): answers from a per-face script and records which faces were asked."""

    def __init__(self, names: dict[int, list[str | None]]) -> None:
        self.names = names  # original face index -> answers, one per call
        self.asked: list[list[int]] = []
        self.order: list[int] = []

    def __call__(self, indices: np.ndarray) -> list[Match]:
        faces = [self.order[i] for i in indices]
        self.asked.append(faces)
        out = []
        for face in faces:
            answers = self.names[face]
            name = answers.pop(0) if len(answers) > 1 else answers[0]
            out.append(Match(name, 0.6 if name else 0.2, 3 if name else 0))
        return out


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert iou_matrix(a, b).tolist() == [[1.0, pytest.approx(1 / 3), 0.0]]


def test_ids_follow_faces_and_only_new_uncertain_or_stale_tracks_are_embedded(
    six: Detections,
) -> None:
    tracker = Tracker(vote_window=5, min_votes=3, refresh_every=10)
    script = Script({i: [f"P{i}"] for i in range(6)})
    ids_per_frame = []
    for frame in range(25):
        order = list(range(6)) if frame % 2 == 0 else [5, 4, 3, 2, 1, 0]  # order changes
        script.order = order
        tracks = tracker.update(_shifted(six, 2.0 * frame, order), script)
        assert [t.name for t in tracks] == [f"P{i}" for i in order]
        ids_per_frame.append({order[j]: t.id for j, t in enumerate(tracks)})
    assert all(ids == ids_per_frame[0] for ids in ids_per_frame)  # same face, same id
    assert sorted(ids_per_frame[0].values()) == [1, 2, 3, 4, 5, 6]
    embedded = [len(asked) for asked in script.asked]
    # frames 1-3: everyone (new, then until 3 votes); then only at refresh: frames 13 and 23
    assert len(script.asked) == 5
    assert embedded == [6, 6, 6, 6, 6]
    assert sum(embedded) == 30  # instead of 25 frames x 6 faces = 150


def test_sure_votes_are_trusted_at_once_and_refreshed_half_as_often(six: Detections) -> None:
    """With `is_sure`, a face named surely is confident from its first vote and, while its
    refreshes agree surely, refreshed every 2 x `refresh_every` frames; any other face is
    settled by two agreeing votes (a third could not change a 2-of-3 majority) and refreshed
    every `refresh_every` frames; a refresh that disagrees is not trusted alone."""
    answers: dict[int, list[tuple[str | None, float]]] = {
        0: [("Ana", 0.7)],  # sure, named
        1: [(None, 0.1)],  # unknown: never sure alone
        2: [("Bea", 0.4), ("Bea", 0.4), (None, 0.2), ("Bea", 0.4)],  # named, near the threshold
        3: [("Cid", 0.7), ("Cid", 0.7), (None, 0.1)],  # sure, then a sure unknown at refresh
    }
    asked: dict[int, list[int]] = {face: [] for face in answers}
    frame = 0

    def identify(indices: np.ndarray) -> list[Match]:
        out = []
        for face in (int(i) for i in indices):
            asked[face].append(frame)
            name, sim = answers[face].pop(0) if len(answers[face]) > 1 else answers[face][0]
            out.append(Match(name, sim, 3 if name else 0))
        return out

    tracker = Tracker(
        vote_window=5,
        min_votes=3,
        refresh_every=10,
        is_sure=lambda name, sim: name is not None and sim >= 0.55,
    )
    four = six[np.array([0, 1, 2, 3])]
    labels = []
    for frame in range(45):
        labels.append([t.name for t in tracker.update(_shifted(four, float(frame)), identify)])
    assert asked[0] == [0, 10, 30]
    assert asked[1] == [0, 1, 11, 21, 31, 41]
    assert asked[2] == [0, 1, 11, 21, 31, 41]  # its 'unknown' at 11 is one vote of three
    # Cid: sure at 0, agreeing refresh at 10; the 'unknown' at 30 is one vote against two
    # (the label stays, the next refresh comes after 10 frames, not 20); at 40 the votes tie,
    # so he is embedded again at once and the majority turns
    assert asked[3] == [0, 10, 30, 40, 41]
    assert [row[3] for row in labels[:40]] == ["Cid"] * 40
    assert [row[3] for row in labels[40:]] == [None] * 5
    assert all(row[:3] == ["Ana", None, "Bea"] for row in labels)

    plain = Tracker(vote_window=5, min_votes=3, refresh_every=10)  # no is_sure: 3 votes each
    answers[0] = [("Ana", 0.7)]
    asked[0] = []
    for frame in range(13):
        plain.update(_shifted(six[np.array([0])], float(frame)), identify)
    assert asked[0] == [0, 1, 2, 12]


def test_one_bad_frame_does_not_change_the_label(six: Detections) -> None:
    one = six[np.array([0])]
    tracker = Tracker(vote_window=5, min_votes=3, majority=0.6, refresh_every=1)
    script = Script({0: ["Ana", "Ana", "Ana", "Bea", "Ana", "Ana"]})
    script.order = [0]
    labels = [tracker.update(_shifted(one, f), script)[0].name for f in range(6)]
    assert labels == ["Ana"] * 6


def test_unknown_stays_unknown_and_a_new_face_gets_a_new_id(six: Detections) -> None:
    tracker = Tracker()
    script = Script({0: [None], 1: ["Ana"]})
    script.order = [0]
    first = tracker.update(six[np.array([0])], script)
    assert first[0].name is None
    assert first[0].embedded
    script.order = [0, 1]
    second = tracker.update(six[np.array([0, 1])], script)
    assert second[0].id == first[0].id
    assert second[1].id not in (None, first[0].id)
    assert second[1].name == "Ana"


def test_reset_forgets_tracks_but_never_reuses_ids(six: Detections) -> None:
    tracker = Tracker()
    script = Script({0: ["Ana"]})
    script.order = [0]
    before = tracker.update(six[np.array([0])], script)[0].id
    tracker.reset()
    after = tracker.update(six[np.array([0])], script)[0].id
    assert after != before
    assert script.asked == [[0], [0]]  # embedded again after the reset


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="majority"):
        Tracker(majority=0.5)
    with pytest.raises(ValueError, match="min_votes"):
        Tracker(vote_window=2, min_votes=3)


# -- track end events, on real detections of composed frames ---------------------------------


def _canvas(face: np.ndarray | None, x: int = 200) -> np.ndarray:
    """A 720x405 grey frame with a textured floor, and `face` (a photo) pasted at `x`, 60."""
    frame = np.full((405, 720, 3), 96, np.uint8)
    frame[300:] = (np.indices((105, 720)).sum(axis=0) % 16 * 8).astype(np.uint8)[..., None]
    if face is not None:
        h, w = face.shape[:2]
        frame[60 : 60 + h, x : x + w] = face
    return frame


@pytest.fixture(scope="module")
def yao_db(engine, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from face_recognizer.enrol import enrol_face
    from face_recognizer.store.sqlite import Gallery

    db = tmp_path_factory.mktemp("events") / "db"
    face, _ = enrol_face(engine, read_image(sample_path("yaoming.jpg")), "yaoming.jpg")
    assert face is not None
    with Gallery(db) as gallery:
        gallery.add_faces("Yao Ming", [face], engine.pack.recognizer_id)
    return db, face.embedding


def _recognizer(engine, db):  # type: ignore[no-untyped-def]
    from face_recognizer.live import Recognizer
    from face_recognizer.matcher import Matcher
    from face_recognizer.store.sqlite import Gallery

    gallery = Gallery(db)
    return Recognizer(engine, Matcher(gallery, engine.pack.recognizer_id)), gallery


def _process(recognizer, images: list[np.ndarray], fps: float = 25.0) -> list:  # type: ignore[no-untyped-def]
    from face_recognizer.types import Frame

    return [recognizer.process(Frame(image, i, None, i / fps)) for i, image in enumerate(images)]


def test_a_face_that_leaves_the_picture_ends_its_track_with_a_sighting(engine, yao_db) -> None:  # type: ignore[no-untyped-def]
    from face_recognizer.live import ROI_HOLD

    db, enrolled = yao_db
    yao = read_image(sample_path("yaoming.jpg"))
    recognizer, gallery = _recognizer(engine, db)
    with gallery:
        images = [_canvas(yao, x=200 + 3 * i) for i in range(12)] + [_canvas(None)] * 10
        results = _process(recognizer, images)
    assert all(len(r.faces) == 1 for r in results[:12])
    # a face that region detection misses is shown at its prediction (not embedded) for up to
    # ROI_HOLD frames while the next whole-frame scan looks for it
    assert all(not f.embedded for r in results[12 : 12 + ROI_HOLD] for f in r.faces)
    assert all(not r.faces for r in results[12 + ROI_HOLD :])
    track_id = results[0].faces[0].id
    ended = [(r.index, e) for r in results for e in r.ended]
    assert len(ended) == 1
    index, event = ended[0]
    assert index == 12 + recognizer.tracker.max_missing  # gone for more than max_missing frames
    assert event.reason == "left"
    assert event.track_id == track_id
    assert (event.first_index, event.last_index, event.frames) == (0, 11, 12)
    assert (event.first_time, event.last_time) == (0.0, pytest.approx(11 / 25))
    assert event.name == "Yao Ming"
    assert 0.5 < event.mean_similarity <= event.best_similarity <= 1.0
    assert event.crop is not None
    assert event.crop.shape[2] == 3
    x1, y1, x2, y2 = results[0].faces[0].xyxy
    assert event.crop.shape[0] > y2 - y1
    assert event.crop.shape[1] > x2 - x1
    assert event.embedding is not None
    # every embedded view counts in the mean (a sure match is embedded once, not three times)
    assert event.embeddings == sum(f.embedded for r in results for f in r.faces) >= 1
    assert float(np.linalg.norm(event.embedding)) == pytest.approx(1.0, abs=1e-5)
    assert float(event.embedding @ enrolled) > 0.5  # the mean embedding is still Yao Ming


def test_a_shot_cut_ends_every_track_and_the_source_end_ends_the_rest(engine, yao_db) -> None:  # type: ignore[no-untyped-def]
    db, _ = yao_db
    yao = read_image(sample_path("yaoming.jpg"))
    team = read_image(sample_path("t1.jpg"))
    recognizer, gallery = _recognizer(engine, db)
    with gallery:
        results = _process(recognizer, [_canvas(yao)] * 6 + [team] * 6)
        at_end = recognizer.finish()
    yao_id = results[0].faces[0].id
    assert [len(r.faces) for r in results] == [1] * 6 + [6] * 6
    cut = results[6].ended
    assert [(e.track_id, e.reason, e.name, e.last_index) for e in cut] == [
        (yao_id, "cut", "Yao Ming", 5)
    ]
    assert all(not r.ended for i, r in enumerate(results) if i != 6)  # nothing else ended
    team_ids = {f.id for f in results[-1].faces}
    assert yao_id not in team_ids
    assert len(team_ids) == 6
    assert {e.track_id for e in at_end} == team_ids
    assert {(e.reason, e.first_index, e.last_index, e.frames) for e in at_end} == {
        ("end", 6, 11, 6)
    }
    assert all(e.crop is not None and e.embedding is not None for e in at_end)
    assert recognizer.tracker.active == 0


def test_run_reports_track_ends_to_sinks_when_a_video_file_ends(engine, yao_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from face_recognizer.live import CallbackSink, run
    from face_recognizer.sources import open_source

    db, _ = yao_db
    yao = read_image(sample_path("yaoming.jpg"))
    clip = tmp_path / "yao.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (720, 405))
    for i in range(15):
        writer.write(_canvas(yao, x=200 + 2 * i))
    writer.release()
    recognizer, gallery = _recognizer(engine, db)
    events = []
    names = []
    with gallery, open_source(str(clip)) as source:
        report = run(
            source,
            recognizer,
            sinks=[
                CallbackSink(
                    on_result=lambda r: names.append([f.name for f in r.faces]),
                    on_track_end=events.append,
                )
            ],
        )
    assert report.frames == 15
    assert names == [["Yao Ming"]] * 15
    assert report.tracks_ended == 1
    assert [(e.reason, e.name, e.first_index, e.last_index, e.frames) for e in events] == [
        ("end", "Yao Ming", 0, 14, 15)
    ]


def test_a_gallery_change_renames_tracks_without_ending_them(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import face_recognizer.live as live
    from face_recognizer.enrol import enrol_face
    from face_recognizer.store.sqlite import Gallery
    from face_recognizer.tracker import crop_box

    db = tmp_path / "db"
    gdp = read_image(sample_path("gdp.jpg"))
    found = engine.detect(gdp)
    biggest = int(np.argmax(found.box_wh.min(axis=1)))
    other, _ = enrol_face(engine, crop_box(gdp, found.xyxy[biggest], 0.5), "gdp.jpg")
    assert other is not None
    with Gallery(db) as gallery:
        gallery.add_faces("Someone Else", [other], engine.pack.recognizer_id)
    yao = read_image(sample_path("yaoming.jpg"))
    recognizer, gallery = _recognizer(engine, db)
    with gallery:
        before = _process(recognizer, [_canvas(yao)] * 5)
        assert [f.name for r in before for f in r.faces] == [None] * 5
        face, _ = enrol_face(engine, yao, "yaoming.jpg")
        with Gallery(db) as writer:  # another connection, as `register` in another process
            writer.add_faces("Yao Ming", [face], engine.pack.recognizer_id)
        recognizer._last_refresh -= live.REFRESH_SECONDS  # the next frame checks the gallery
        after = _process(recognizer, [_canvas(yao)] * 5)
    track_ids = {f.id for r in before + after for f in r.faces}
    assert len(track_ids) == 1  # the same track all along
    assert not any(r.ended for r in before + after)  # nothing ended
    assert after[0].faces[0].embedded  # re-identified at once
    assert [f.name for r in after for f in r.faces] == ["Yao Ming"] * 5


def test_per_face_data_is_sliced_with_the_faces_and_reaches_the_tracks(six: Detections) -> None:
    states = np.array(["live", "spoof", "live", "unknown", "live", "spoof"])
    dense = np.zeros((6, 106, 2), np.float32)  # e.g. an analyser's 106-point landmarks
    with_data = six.with_data(live=states, landmarks_106=dense)
    picked = with_data[with_data.scores >= np.sort(with_data.scores)[3]]  # the best three
    assert len(picked) == 3
    assert picked.data["live"].tolist() == states[six.scores >= np.sort(six.scores)[3]].tolist()
    assert picked.data["landmarks_106"].shape == (3, 106, 2)
    with pytest.raises(ValueError, match="one row per face"):
        six.with_data(live=states[:2])
    with pytest.raises(TypeError):
        with_data.data["live"] = states  # type: ignore[index]
    wide = Detections(six.xyxy, six.scores, np.zeros((6, 106, 2)))  # landmarks: any K points
    assert wide.landmarks.shape == (6, 106, 2)
    script = Script({i: [f"P{i}"] for i in range(6)})
    script.order = list(range(6))
    tracks = Tracker().update(with_data, script)
    assert [t.data["live"] for t in tracks] == states.tolist()


def test_the_live_loop_runs_on_a_background_thread_and_stops_when_asked(  # type: ignore[no-untyped-def]
    engine, yao_db, tmp_path
) -> None:
    """What a server does: run() on its own thread, results through a sink, stopped by an event."""
    import threading

    from face_recognizer.live import CallbackSink, run
    from face_recognizer.sources import open_source

    db, _ = yao_db
    yao = read_image(sample_path("yaoming.jpg"))
    clip = tmp_path / "yao.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (720, 405))
    for _ in range(40):
        writer.write(_canvas(yao))
    writer.release()
    stop = threading.Event()
    seen: list[int] = []
    events = []
    reports = []

    def on_result(result) -> None:  # type: ignore[no-untyped-def]
        seen.append(result.index)
        if len(seen) == 5:
            stop.set()

    recognizer, gallery = _recognizer(engine, db)

    def serve() -> None:
        with open_source(str(clip)) as source:
            sink = CallbackSink(on_result=on_result, on_track_end=events.append)
            reports.append(run(source, recognizer, sinks=[sink], stop=stop))

    with gallery:
        thread = threading.Thread(target=serve)
        thread.start()
        thread.join(60)
    assert not thread.is_alive()
    assert seen == [0, 1, 2, 3, 4]
    assert reports[0].stopped_by == "stop"
    assert [(e.reason, e.name, e.last_index) for e in events] == [("end", "Yao Ming", 4)]


def test_steady_means_big_enough_and_slow_relative_to_size(six: Detections) -> None:
    """A longer prediction is allowed only for faces whose predicted boxes barely move."""
    side = float(six.box_wh.min())
    still, moving = Tracker(), Tracker()
    for frame in range(4):
        still.update(_shifted(six, 0.0), lambda idx: [Match(None, 0.1, 0)] * len(idx))
        moving.update(
            _shifted(six, 0.2 * side * frame), lambda idx: [Match(None, 0.1, 0)] * len(idx)
        )
    assert still.steady(min_side=side * 0.9, max_shift=0.05)
    assert not still.steady(min_side=side * 1.1, max_shift=0.05)  # a face too small
    assert not moving.steady(min_side=side * 0.9, max_shift=0.05)  # 0.2 of its size a frame
    assert moving.steady(min_side=side * 0.9, max_shift=0.5)
