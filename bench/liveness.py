"""Blink liveness on attack clips and real clips: ISO/IEC 30107-3 APCER and BPCER.

Every clip goes frame by frame through the product's path (`Recognizer` tracking with an
empty gallery, then `BlinkLiveness` on its tracks, as `recognize --liveness` runs it).

* Attacks (from bench/make_attacks.py, `attacks.csv` in `--attacks`): a clip is *accepted*
  when any of its tracks becomes live. APCER per attack type = accepted / clips in which a face
  was judged at all (clips with no judged face are counted apart).
* Bona fide: every track of the shared real clips (`videos/*.mp4`) judged for at least
  `--min-seconds`. BPCER = such tracks not live within `--within` seconds of their first judged
  frame; the tracks seen blinking by eye (`SEEN_BLINKING`) are reported on their own line.
  Time to accept: seconds from a track's first judged frame to the frame it became live.

    .venv/bin/python bench/make_attacks.py ../shared/datasets/lfw_dev --limit 75
    .venv/bin/python bench/liveness.py --datasets ../shared/datasets --attacks /tmp/liveness_attacks
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from face_recognizer.analysers.challenge import TURN_DELTA, TURN_FRAMES, held_turn
from face_recognizer.analysers.liveness import BlinkLiveness
from face_recognizer.engine import Engine
from face_recognizer.live import LIVENESS_LEVERS, Recognizer
from face_recognizer.matcher import Matcher
from face_recognizer.models import find_pack
from face_recognizer.sources import open_source
from face_recognizer.store.sqlite import Gallery

# Real tracks that blink on screen, checked frame by frame by eye: (clip, frame, a point in
# the face). Barack Obama in the Hamilton clip's audience shot (his face around x 347, y 90
# at frame 222) closes his eyes at frames 221-224 and 247-250.
SEEN_BLINKING = {("hamilton_whitehouse_short.mp4", 222, (347, 90))}


@dataclass
class TrackRecord:
    first_frame: int
    first_judged: float | None = None  # seconds
    last_judged: float | None = None
    live_at: float | None = None
    frames: list[int] = field(default_factory=list)
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    yaws: list[float] = field(default_factory=list)

    @property
    def yaw_change(self) -> float:
        """Largest turn from the track's first frame held for TURN_FRAMES frames in a row,
        as the challenge judges a turn (either direction)."""
        return max(
            (
                abs(held_turn(self.yaws[: i + 1], self.yaws[0]))
                for i in range(TURN_FRAMES - 1, len(self.yaws))
            ),
            default=0.0,
        )

    def covers(self, frame: int, point: tuple[int, int]) -> bool:
        box = self.boxes.get(frame)
        return box is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]

    @property
    def judged_seconds(self) -> float:
        if self.first_judged is None or self.last_judged is None:
            return 0.0
        return self.last_judged - self.first_judged

    @property
    def time_to_live(self) -> float | None:
        if self.live_at is None or self.first_judged is None:
            return None
        return self.live_at - self.first_judged


def run_clip(recognizer: Recognizer, liveness: BlinkLiveness, path: Path) -> dict[int, TrackRecord]:
    """Every track of the clip with when it was first judged and when it became live."""
    recognizer.reset()
    liveness.reset()
    tracks: dict[int, TrackRecord] = {}
    with open_source(str(path)) as source:
        for frame in source:
            result = recognizer.process(frame)
            faces = result.faces
            states = liveness.update(
                frame.image,
                frame.timestamp,
                [f.id for f in faces],
                [f.xyxy for f in faces] if faces else [],
                [f.landmarks for f in faces] if faces else [],
            )
            for face, state in zip(faces, states, strict=True):
                if face.id is None:
                    continue
                record = tracks.setdefault(face.id, TrackRecord(frame.index))
                record.frames.append(frame.index)
                record.boxes[frame.index] = face.xyxy
                record.yaws.append(state.yaw)
                if state.openness is not None or state.live:
                    if record.first_judged is None:
                        record.first_judged = frame.timestamp
                    record.last_judged = frame.timestamp
                if state.live and record.live_at is None:
                    record.live_at = frame.timestamp
    return tracks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--attacks", type=Path, default=Path("/tmp/liveness_attacks"))
    parser.add_argument("--within", type=float, default=5.0, help="seconds for BPCER")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    engine = Engine(find_pack(), ctx=-1)
    with tempfile.TemporaryDirectory(prefix="liveness-gallery-") as tmp:
        gallery = Gallery(Path(tmp) / "db")
        recognizer = Recognizer(
            engine, Matcher(gallery, engine.pack.recognizer_id), levers=LIVENESS_LEVERS
        )
        liveness = BlinkLiveness(engine.landmarks_106)

        rows = list(csv.DictReader((args.attacks / "attacks.csv").open()))
        accepted: dict[str, int] = defaultdict(int)
        judged: dict[str, int] = defaultdict(int)
        unjudged: dict[str, int] = defaultdict(int)
        yaw_change: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            tracks = run_clip(recognizer, liveness, Path(row["clip"]))
            attack = row["attack"]
            if not any(t.first_judged is not None for t in tracks.values()):
                unjudged[attack] += 1
                continue
            judged[attack] += 1
            # the turn challenge follows one face: the attack's longest track
            longest = max(tracks.values(), key=lambda t: len(t.frames))
            yaw_change[attack].append(longest.yaw_change)
            if any(t.live_at is not None for t in tracks.values()):
                accepted[attack] += 1
                print(f"ACCEPTED attack: {row['clip']}", flush=True)

        print("| presentation | clips judged | accepted (blink) | APCER | clips without a "
              f"judged face | largest turn ({TURN_FRAMES} frames) | clips that turn "
              f">= {TURN_DELTA} |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for attack in sorted(judged.keys() | unjudged.keys()):
            n = judged[attack]
            rate = f"{accepted[attack] / n:.1%}" if n else "n/a"
            yaws = yaw_change[attack]
            turned = sum(y >= TURN_DELTA for y in yaws)
            print(f"| attack: {attack} | {n} | {accepted[attack]} | {rate} | "
                  f"{unjudged[attack]} | {max(yaws, default=0):.2f} | {turned} |")  # fmt: skip
        total = sum(judged.values())
        if total:
            yaws = [y for v in yaw_change.values() for y in v]
            print(f"| attack: all | {total} | {sum(accepted.values())} | "
                  f"{sum(accepted.values()) / total:.1%} | {sum(unjudged.values())} | "
                  f"{max(yaws):.2f} | {sum(y >= TURN_DELTA for y in yaws)} |")  # fmt: skip

        bona_fide: list[tuple[str, int, TrackRecord]] = []
        for clip in sorted((args.datasets / "videos").glob("*.mp4")):
            for tid, record in run_clip(recognizer, liveness, clip).items():
                if record.judged_seconds >= args.min_seconds:
                    bona_fide.append((clip.name, tid, record))
                if args.verbose:
                    print(
                        f"  {clip.name} track {tid}: frames {record.frames[0]}-"
                        f"{record.frames[-1]}, judged {record.judged_seconds:.1f} s, "
                        f"live after {record.time_to_live}"
                    )
        rejected = [
            r for _, _, r in bona_fide if r.time_to_live is None or r.time_to_live > args.within
        ]
        blinking = [
            (c, r)
            for c, _, r in bona_fide
            if any(c == clip and r.covers(f, p) for clip, f, p in SEEN_BLINKING)
        ]
        times = [r.time_to_live for _, _, r in bona_fide if r.time_to_live is not None]
        print()
        print(f"| real tracks (judged >= {args.min_seconds:g} s) | not live within "
              f"{args.within:g} s | BPCER | median time to accept |")  # fmt: skip
        print("|---|---|---|---|")
        median = f"{statistics.median(times):.2f} s" if times else "n/a"
        print(f"| all: {len(bona_fide)} | {len(rejected)} | "
              f"{len(rejected) / max(1, len(bona_fide)):.0%} | {median} |")  # fmt: skip
        missed = [r for _, r in blinking if r.time_to_live is None]
        blink_times = [r.time_to_live for _, r in blinking if r.time_to_live is not None]
        median = f"{statistics.median(blink_times):.2f} s" if blink_times else "n/a"
        print(f"| seen blinking by eye: {len(blinking)} | {len(missed)} | "
              f"{len(missed) / max(1, len(blinking)):.0%} | {median} |")  # fmt: skip
        gallery.close()


if __name__ == "__main__":
    main()
