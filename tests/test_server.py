"""The REST API against a real `face-recognizer serve` process on a free loopback port.

Real photos (the bundled samples; the shared reference photos where present), the real
engine and gallery in the server; requests over HTTP from this process.
"""

from __future__ import annotations

import base64
import json
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from serving import Server, cli, create_key, start_server

from face_recognizer.errors import GalleryError
from face_recognizer.images import read_image
from face_recognizer.matcher import DEFAULT_THRESHOLD
from face_recognizer.samples import sample_path

API = "/api/v1"


def photo(name: str) -> tuple[str, bytes, str]:
    """A bundled sample as an httpx file tuple."""
    path = sample_path(name)
    return (path.name, path.read_bytes(), "image/jpeg")


def yao_copy(tag: int) -> tuple[str, bytes, str]:
    """yaoming.jpg with one pixel changed, as PNG: other bytes, so another photo to the
    gallery, which refuses to give one photo to two people."""
    image = read_image(sample_path("yaoming.jpg")).copy()
    image[0, 0] = (tag, tag, tag)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return (f"yao-{tag}.png", data.tobytes(), "image/png")


def ref(datasets: Path, person: str, name: str) -> tuple[str, bytes, str]:
    path = datasets / "videos" / "references" / person / name
    return (path.name, path.read_bytes(), "application/octet-stream")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """One server for the module: (server, read-write key, read-only key)."""
    db = tmp_path_factory.mktemp("served") / "db"
    key = create_key(db, "admin")
    read_only = create_key(db, "kiosk", "--read-only")
    srv = start_server(db)
    yield srv, key, read_only
    assert srv.stop() == 130, "".join(srv.stderr)
    assert "".join(srv.stderr).strip() == "Stopped."


def names(client: httpx.Client) -> dict[str, int]:
    page = client.get(f"{API}/people", params={"limit": 500}).json()
    return {p["name"]: p["photos"] for p in page["people"]}


# -- keys ------------------------------------------------------------------------------------
def test_keys_are_printed_once_and_stored_as_a_hash(tmp_path: Path) -> None:
    db = tmp_path / "db"
    done = cli("keys", "create", "door", "--db", str(db))
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("frk_")
    assert len(key) > 40
    assert key.encode() not in (db / "gallery.sqlite3").read_bytes()
    listed = json.loads(cli("keys", "list", "--json", "--db", str(db)).stdout)
    assert [(k["name"], k["read_only"]) for k in listed] == [("door", False)]
    again = cli("keys", "create", "door", "--db", str(db), check=False)
    assert again.returncode == 1
    assert again.stderr.startswith("Error: A key named 'door' exists")
    cli("keys", "revoke", "door", "--db", str(db))
    assert json.loads(cli("keys", "list", "--json", "--db", str(db)).stdout) == []
    gone = cli("keys", "revoke", "door", "--db", str(db), check=False)
    assert gone.returncode == 1
    assert "no key named 'door'" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_health_needs_no_key_and_everything_else_does(server: tuple[Server, str, str]) -> None:
    srv, _, _ = server
    with srv.client() as anonymous:
        health = anonymous.get(f"{API}/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok"
        assert body["device"] == "CPU"
        assert body["model_pack"]["name"] == "buffalo_sc"
        assert body["embedding_size"] == 512
        for method, path in [
            ("GET", "/people"),
            ("POST", "/identify"),
            ("POST", "/verify"),
            ("POST", "/people/Ana/faces"),
            ("DELETE", "/people/Ana"),
            ("PATCH", "/people/Ana"),
            ("DELETE", "/faces/1"),
            ("GET", "/faces/1/crop.png"),
        ]:
            answer = anonymous.request(method, API + path)
            assert answer.status_code == 401, (method, path)
            assert answer.json() == {
                "error": "This request needs an API key in the x-api-key header."
            }
    with srv.client("frk_not-a-key") as wrong:
        answer = wrong.get(f"{API}/people")
        assert answer.status_code == 401
        assert answer.json()["error"] == "The API key is not valid (unknown or revoked)."


def test_a_read_only_key_reads_but_cannot_change(server: tuple[Server, str, str]) -> None:
    srv, key, read_only = server
    with srv.client(key) as admin:
        assert admin.post(f"{API}/people/RO Test/faces", files={"file": yao_copy(1)}).is_success
    with srv.client(read_only) as kiosk:
        assert kiosk.get(f"{API}/whoami").json()["read_only"] is True
        assert kiosk.get(f"{API}/people").status_code == 200
        assert (
            kiosk.post(f"{API}/identify", files={"file": photo("yaoming.jpg")}).status_code == 200
        )
        for answer in (
            kiosk.post(f"{API}/people/X/faces", files={"file": photo("yaoming.jpg")}),
            kiosk.patch(f"{API}/people/RO Test", json={"name": "Other"}),
            kiosk.delete(f"{API}/people/RO Test"),
        ):
            assert answer.status_code == 403
            assert answer.json()["error"] == (
                "The key 'kiosk' is read-only; it cannot change the gallery."
            )
    with srv.client(key) as admin:
        assert "RO Test" in names(admin)
        assert admin.delete(f"{API}/people/RO Test").status_code == 200


def test_a_revoked_key_stops_working_in_the_running_server(
    server: tuple[Server, str, str],
) -> None:
    srv, _, _ = server
    temporary = create_key(srv.db, "temporary")
    with srv.client(temporary) as client:
        assert client.get(f"{API}/people").status_code == 200
        cli("keys", "revoke", "temporary", "--db", str(srv.db))
        assert client.get(f"{API}/people").status_code == 401


def test_a_public_address_without_any_key_is_refused(tmp_path: Path) -> None:
    done = cli("serve", "--host", "0.0.0.0", "--db", str(tmp_path / "db"), check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: Refusing to listen on 0.0.0.0 while no API key exists; create one first with "
        "`face-recognizer keys create NAME`."
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_the_server_as_ctrl_c_does(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """A service manager's `kill` stops the server cleanly, with 128 + the signal's number."""
    srv = start_server(tmp_path / "db")
    srv.proc.send_signal(signum)
    try:
        assert srv.proc.wait(30) == code, "".join(srv.stderr)
    finally:  # a server that ignored the signal is not left running
        if srv.alive():
            srv.proc.kill()
            srv.proc.wait(5)
    time.sleep(0.2)  # the pump thread hands over the last line
    assert "".join(srv.stderr).strip() == f"Stopped by {signum.name}."


# -- enrol, identify, verify ----------------------------------------------------------------
def test_enrol_then_identify_the_person_in_a_team_photo(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        first = client.post(f"{API}/people/Yao Ming/faces", files={"file": photo("yaoming.jpg")})
        assert first.status_code == 201
        assert first.json() == {
            "name": "Yao Ming",
            "photos": [{"file": "yaoming.jpg", "result": "ok"}],
            "added": 1,
            "person_photos": 1,
            "created": True,
        }
        again = client.post(f"{API}/people/Yao Ming/faces", files={"file": photo("yaoming.jpg")})
        assert again.status_code == 200
        assert again.json()["photos"] == [{"file": "yaoming.jpg", "result": "already stored"}]
        assert again.json()["person_photos"] == 1

        team = client.post(f"{API}/identify", files={"file": photo("players.jpg")}).json()
        assert len(team["faces"]) == 22
        named = [f for f in team["faces"] if f["name"] is not None]
        assert [f["name"] for f in named] == ["Yao Ming"]
        assert named[0]["similarity"] > 0.5
        x1, y1, x2, y2 = named[0]["box"]
        assert 0 <= x1 < x2 <= 1237
        assert 0 <= y1 < y2 <= 800
        assert len(named[0]["landmarks"]) == 5

        one = client.post(
            f"{API}/identify", params={"pick": "largest"}, files={"file": photo("players.jpg")}
        ).json()
        assert len(one["faces"]) == 1
        areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in team["faces"]]
        assert one["faces"][0]["box"] == team["faces"][int(np.argmax(areas))]["box"]

        nobody = client.post(f"{API}/identify", files={"file": photo("mask_white.jpg")})
        assert nobody.status_code == 200
        assert nobody.json() == {"faces": []}
        centre = client.post(
            f"{API}/identify", params={"pick": "center"}, files={"file": photo("mask_white.jpg")}
        )
        assert centre.status_code == 422
        assert centre.json() == {"error": "The photo holds no face that the detector can find."}


def test_photos_as_base64_json(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    data = sample_path("yaoming.jpg").read_bytes()
    first, second = yao_copy(7)[1], yao_copy(8)[1]  # not the file Yao Ming was enrolled with
    with srv.client(key) as client:
        answer = client.post(
            f"{API}/people/Yao B64/faces",
            json={
                "images_base64": [
                    base64.b64encode(first).decode(),
                    "data:image/png;base64," + base64.b64encode(second).decode(),
                ]
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["added"] == 2
        found = client.post(
            f"{API}/identify", json={"images_base64": [base64.b64encode(data).decode()]}
        ).json()
        assert [f["name"] for f in found["faces"]] in (["Yao Ming"], ["Yao B64"])
        assert client.delete(f"{API}/people/Yao B64").json() == {"removed": "Yao B64", "photos": 2}


def test_verify_two_photos(server: tuple[Server, str, str], datasets: Path) -> None:
    srv, key, _ = server
    obama = "Barack_Obama"
    with srv.client(key) as client:
        same = client.post(
            f"{API}/verify",
            files=[
                ("file", ref(datasets, obama, "obama.jpg")),
                ("file", ref(datasets, obama, "obama2.jpg")),
            ],
        )
        assert same.status_code == 200
        body = same.json()
        assert body["same_person"] is True
        assert body["similarity"] > body["threshold"]
        assert body["threshold"] == pytest.approx(DEFAULT_THRESHOLD)
        other = client.post(
            f"{API}/verify",
            files=[
                ("file", ref(datasets, obama, "obama.jpg")),
                ("file", ref(datasets, "Joe_Biden", "biden.jpg")),
            ],
        ).json()
        assert other["same_person"] is False
        assert other["similarity"] < 0.2


def test_verify_needs_exactly_two_photos_with_one_face_each(
    server: tuple[Server, str, str],
) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        one = client.post(f"{API}/verify", files={"file": photo("yaoming.jpg")})
        assert one.status_code == 400
        assert one.json() == {"error": "Verify takes exactly two photos, got 1."}
        three = client.post(f"{API}/verify", files=[("file", photo("yaoming.jpg"))] * 3)
        assert three.status_code == 400
        crowd = client.post(
            f"{API}/verify", files=[("file", photo("yaoming.jpg")), ("file", photo("t1.jpg"))]
        )
        assert crowd.status_code == 422
        assert crowd.json()["error"] == (
            "The second photo (t1.jpg) holds 6 faces, so it is unclear which one to compare. "
            "Send ?pick=largest to use the largest face."
        )
        picked = client.post(
            f"{API}/verify",
            params={"pick": "largest"},
            files=[("file", photo("yaoming.jpg")), ("file", photo("t1.jpg"))],
        )
        assert picked.status_code == 200
        assert picked.json()["same_person"] is False
        empty = client.post(
            f"{API}/verify",
            files=[("file", photo("mask_white.jpg")), ("file", photo("yaoming.jpg"))],
        )
        assert empty.status_code == 422
        assert empty.json()["error"] == (
            "The first photo (mask_white.jpg) holds no face that the detector can find."
        )


def test_enrol_answers_per_photo_and_stores_nothing_when_none_is_usable(
    server: tuple[Server, str, str],
) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        before = names(client)
        bad = client.post(
            f"{API}/people/Nobody/faces",
            files=[
                ("file", photo("mask_white.jpg")),
                ("file", photo("t1.jpg")),
                ("file", ("notes.txt", b"not a photo", "text/plain")),
            ],
        )
        assert bad.status_code == 422
        assert bad.json()["photos"] == [
            {"file": "mask_white.jpg", "result": "no face"},
            {"file": "t1.jpg", "result": "several faces"},
            {
                "file": "notes.txt",
                "result": "notes.txt is not a picture (JPEG, PNG, WebP, BMP, TIFF, GIF or PPM).",
            },
        ]
        assert bad.json()["error"].startswith("No photo was usable, nothing was stored (")
        assert names(client) == before
        mixed = client.post(
            f"{API}/people/Mixed/faces",
            files=[("file", photo("t1.jpg")), ("file", yao_copy(2))],
        )
        assert mixed.status_code == 201
        # Yao Ming's photo is compared with t1.jpg's faces (group-photo enrolment): he is not in it
        results = [p["result"] for p in mixed.json()["photos"]]
        assert results == ["several faces, none clearly Mixed", "ok"]
        assert names(client)["Mixed"] == 1
        client.delete(f"{API}/people/Mixed")


def test_embeddings_are_checked_for_length_and_model_pack(
    server: tuple[Server, str, str],
) -> None:
    srv, key, _ = server
    rng = np.random.default_rng(5)
    with srv.client(key) as client:
        rid = client.get(f"{API}/health").json()["model_pack"]["recognizer_id"]
        vectors = rng.normal(size=(2, 512)).tolist()
        ok = client.post(
            f"{API}/people/Vector Person/faces", json={"embeddings": vectors, "model_pack": rid}
        )
        assert ok.status_code == 201
        assert ok.json()["added"] == 2
        short = client.post(
            f"{API}/people/Vector Person/faces",
            json={"embeddings": [[0.1] * 128], "model_pack": rid},
        )
        assert short.status_code == 422
        assert short.json() == {
            "error": "embedding 1 has 128 numbers; buffalo_sc embeddings have 512."
        }
        other = client.post(
            f"{API}/people/Vector Person/faces",
            json={"embeddings": vectors, "model_pack": "buffalo_l"},
        )
        assert other.status_code == 422
        assert other.json()["error"].startswith(
            "Embeddings must come from this server's model pack buffalo_sc"
        )
        zero = client.post(
            f"{API}/people/Vector Person/faces",
            json={"embeddings": [[0.0] * 512], "model_pack": rid},
        )
        assert zero.status_code == 422
        assert names(client)["Vector Person"] == 2
        client.delete(f"{API}/people/Vector Person")


# -- people: pages, crops, rename, delete -----------------------------------------------------
def test_people_come_in_pages_with_crop_links(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    rng = np.random.default_rng(7)
    with srv.client(key) as client:
        rid = client.get(f"{API}/health").json()["model_pack"]["recognizer_id"]
        added = [f"Page {i:02d}" for i in range(7)]
        for name in added:
            answer = client.post(
                f"{API}/people/{name}/faces",
                json={"embeddings": rng.normal(size=(1, 512)).tolist(), "model_pack": rid},
            )
            assert answer.status_code == 201
        total = client.get(f"{API}/people", params={"limit": 1}).json()["total"]
        seen: list[str] = []
        for offset in range(0, total, 3):
            page = client.get(f"{API}/people", params={"limit": 3, "offset": offset}).json()
            assert page["total"] == total
            assert page["limit"] == 3
            assert page["offset"] == offset
            assert len(page["people"]) == min(3, total - offset)
            seen += [p["name"] for p in page["people"]]
        assert seen == sorted(seen)
        assert len(seen) == len(set(seen)) == total
        assert set(added) <= set(seen)
        past = client.get(f"{API}/people", params={"limit": 3, "offset": total}).json()
        assert past["people"] == []
        assert client.get(f"{API}/people", params={"limit": 0}).status_code == 422
        assert client.get(f"{API}/people", params={"offset": -1}).status_code == 422
        for name in added:
            assert client.delete(f"{API}/people/{name}").status_code == 200


def test_crop_rename_delete_face_and_person(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        client.post(f"{API}/people/Crop Test/faces", files={"file": yao_copy(3)})
        ok, flipped = cv2.imencode(".jpg", read_image(sample_path("yaoming.jpg"))[:, ::-1])
        assert ok
        client.post(
            f"{API}/people/Crop Test/faces",
            files={"file": ("mirrored.jpg", flipped.tobytes(), "image/jpeg")},
        )
        entry = next(
            p
            for p in client.get(f"{API}/people", params={"limit": 500}).json()["people"]
            if p["name"] == "Crop Test"
        )
        assert entry["photos"] == 2
        assert len(entry["faces"]) == 2
        png = client.get(entry["faces"][0]["crop"])
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        crop = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape == (112, 112, 3)

        renamed = client.patch(f"{API}/people/Crop Test", json={"name": "  Crop Renamed "})
        assert renamed.status_code == 200
        assert renamed.json() == {"name": "Crop Renamed"}
        assert client.patch(f"{API}/people/Crop Test", json={"name": "X"}).status_code == 404
        client.post(f"{API}/people/Taken Name/faces", files={"file": yao_copy(4)})
        taken = client.patch(f"{API}/people/Crop Renamed", json={"name": "Taken Name"})
        assert taken.status_code == 409
        assert taken.json() == {
            "error": "'Taken Name' is already in the gallery; remove one first."
        }
        blank = client.patch(f"{API}/people/Crop Renamed", json={"name": "   "})
        assert blank.status_code == 400
        assert blank.json() == {"error": "A person's name cannot be empty."}
        assert client.patch(f"{API}/people/Crop Renamed", json=["x"]).status_code == 400

        first, second = (f["id"] for f in entry["faces"])
        gone = client.delete(f"{API}/faces/{first}")
        assert gone.json() == {"removed": first, "name": "Crop Renamed", "person_photos": 1}
        assert client.get(f"{API}/faces/{first}/crop.png").status_code == 404
        assert client.delete(f"{API}/faces/{first}").status_code == 404
        assert names(client)["Crop Renamed"] == 1
        last = client.delete(f"{API}/faces/{second}").json()
        assert last["person_photos"] == 0
        assert "Crop Renamed" not in names(client)  # a person without faces is gone too

        removed = client.delete(f"{API}/people/Taken Name")
        assert removed.json() == {"removed": "Taken Name", "photos": 1}
        assert client.delete(f"{API}/people/Taken Name").status_code == 404
        assert client.get(f"{API}/faces/abc/crop.png").status_code == 422


def test_unicode_names_work_in_paths(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        answer = client.post(f"{API}/people/José Ñúñez/faces", files={"file": yao_copy(5)})
        assert answer.status_code == 201
        assert answer.json()["name"] == "José Ñúñez"
        assert "José Ñúñez" in names(client)
        assert client.delete(f"{API}/people/José Ñúñez").status_code == 200


# -- bad input -------------------------------------------------------------------------------
def _png_header_bomb(side: int) -> bytes:
    """A valid greyscale PNG of side x side black pixels: a few hundred KB, side^2 decoded."""
    raw = zlib.compress(b"\0" * ((side + 1) * side), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_bad_input_is_one_sentence_and_never_stores_or_crashes(
    server: tuple[Server, str, str],
) -> None:
    srv, key, _ = server
    jpeg = sample_path("yaoming.jpg").read_bytes()
    bomb = _png_header_bomb(8000)  # 64 megapixels
    assert len(bomb) < 200_000
    with srv.client(key) as client:
        before = names(client)
        cases = [
            # (request, status, error)
            (
                client.post(f"{API}/identify", files={"file": ("cut.jpg", jpeg[: len(jpeg) // 2])}),
                400,
                "cut.jpg could not be decoded",
            ),
            (
                client.post(f"{API}/identify", files={"file": ("x.jpg", b"\xff\xd8\xff garbage")}),
                400,
                "x.jpg is not a picture",
            ),
            (
                client.post(f"{API}/identify", files={"file": ("e.jpg", b"")}),
                400,
                "e.jpg is empty.",
            ),
            (
                client.post(f"{API}/identify", files={"file": ("bomb.png", bomb)}),
                422,
                "bomb.png is 8000x8000 pixels (64 megapixels), more than the 50 megapixels",
            ),
            (
                client.post(f"{API}/people/Bomb/faces", files={"file": ("bomb.png", bomb)}),
                422,
                "No photo was usable, nothing was stored (bomb.png: bomb.png is 8000x8000",
            ),
            (
                client.post(
                    f"{API}/identify", files={"file": ("big.jpg", jpeg + b"\0" * 10_500_000)}
                ),
                413,
                "big.jpg is 10.5 MB, more than the 10 MB a photo may have.",
            ),
            (
                client.post(
                    f"{API}/identify",
                    content=b"x" * 51_000_000,
                    headers={"content-type": "application/octet-stream"},
                ),
                413,
                "The request is larger than the 50.1 MB a request may have",
            ),
            (
                client.post(f"{API}/identify", content=b"{}", headers={"content-type": "text/x"}),
                415,
                "Send photos as multipart/form-data",
            ),
            (
                client.post(
                    f"{API}/identify",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                400,
                "The body is not valid JSON.",
            ),
            (
                client.post(f"{API}/identify", json={"images_base64": ["%%%"]}),
                400,
                "images_base64[0] is not valid base64.",
            ),
            (client.post(f"{API}/identify", json={"images_base64": []}), 400, '"images_base64"'),
            (client.post(f"{API}/identify", json={"photos": []}), 400, "The JSON body needs"),
            (
                client.post(f"{API}/identify", files={"other": photo("yaoming.jpg")}),
                400,
                "Send the photos as form files named 'file'.",
            ),
            (
                client.post(
                    f"{API}/identify", params={"pick": "biggest"}, files={"file": photo("t1.jpg")}
                ),
                422,
                "pick:",
            ),
            (
                client.post(
                    f"{API}/identify",
                    content=b"--b\r\nbroken",
                    headers={"content-type": "multipart/form-data; boundary=b"},
                ),
                400,
                "",
            ),
            (client.post(f"{API}/people/%20/faces", files={"file": photo("yaoming.jpg")}), 400, ""),
            (client.get(f"{API}/nothing-here"), 404, "There is no such page"),
            (client.put(f"{API}/people"), 405, "This address does not take that method"),
        ]
        for answer, status, error in cases:
            assert answer.status_code == status, (error, answer.text)
            body = answer.json()
            assert isinstance(body["error"], str)
            assert body["error"].startswith(error), body
            assert "\n" not in body["error"]
            assert "Traceback" not in body["error"]
        assert names(client) == before
        assert client.get(f"{API}/health").status_code == 200
    assert srv.alive()


# -- concurrency, and other processes ---------------------------------------------------------
def test_eight_clients_identify_while_another_enrols(server: tuple[Server, str, str]) -> None:
    srv, key, _ = server
    yao = sample_path("yaoming.jpg").read_bytes()
    errors: list[str] = []
    named: list[int] = []
    rng = np.random.default_rng(11)

    def identify() -> None:
        with srv.client(key) as client:
            for _ in range(20):
                try:
                    answer = client.post(f"{API}/identify", files={"file": ("y.jpg", yao)})
                    if answer.status_code != 200:
                        errors.append(answer.text)
                    else:
                        faces = answer.json()["faces"]
                        named.append(sum(f["name"] is not None for f in faces))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    def enrol() -> None:
        with srv.client(key) as client:
            rid = client.get(f"{API}/health").json()["model_pack"]["recognizer_id"]
            for i in range(15):
                answer = client.post(
                    f"{API}/people/Busy {i}/faces",
                    json={"embeddings": rng.normal(size=(2, 512)).tolist(), "model_pack": rid},
                )
                if answer.status_code != 201:
                    errors.append(answer.text)

    with srv.client(key) as client:
        if "Yao Ming" not in names(client):
            client.post(f"{API}/people/Yao Ming/faces", files={"file": photo("yaoming.jpg")})
    threads = [threading.Thread(target=identify) for _ in range(8)]
    threads.append(threading.Thread(target=enrol))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(named) == 160
    assert set(named) == {1}  # the one face named in every answer
    with srv.client(key) as client:
        people = names(client)
        assert all(people[f"Busy {i}"] == 2 for i in range(15))
        for i in range(15):
            client.delete(f"{API}/people/Busy {i}")


def test_cli_changes_show_in_the_server_and_api_changes_in_the_cli(
    server: tuple[Server, str, str],
) -> None:
    srv, key, _ = server
    with srv.client(key) as client:
        client.post(f"{API}/people/Shared/faces", files={"file": yao_copy(6)})
        listed = json.loads(cli("people", "list", "--json", "--db", str(srv.db)).stdout)
        assert {"name": "Shared", "photos": 1} in [
            {"name": p["name"], "photos": p["photos"]} for p in listed
        ]
        cli("people", "rename", "Shared", "Shared Renamed", "--db", str(srv.db))
        assert "Shared Renamed" in names(client)
        found = client.post(
            f"{API}/identify", params={"pick": "largest"}, files={"file": photo("yaoming.jpg")}
        ).json()
        assert found["faces"][0]["name"] in ("Yao Ming", "Shared Renamed")
        cli("people", "remove", "Shared Renamed", "--yes", "--db", str(srv.db))
        assert "Shared Renamed" not in names(client)


def _clip(path: Path, frames: int) -> Path:
    """A video of yaoming.jpg (233x287) on a 400x320 canvas, drifting a pixel per frame."""
    image = read_image(sample_path("yaoming.jpg"))
    canvas = np.full((320, 400, 3), 40, np.uint8)
    y, x = (320 - image.shape[0]) // 2, (400 - image.shape[1]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (400, 320))
    for i in range(frames):
        writer.write(np.roll(canvas, (i % 40) - 20, axis=1))
    writer.release()
    return path


def test_api_changes_reach_a_running_recognize_within_seconds(tmp_path: Path) -> None:
    db = tmp_path / "db"
    key = create_key(db, "admin")
    clip = _clip(tmp_path / "long.avi", 1500)
    srv = start_server(db)
    recognize = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "face_recognizer",
            "recognize",
            "--source",
            str(clip),
            "--no-window",
            "--json",
            "--ctx",
            "-1",
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert recognize.stdout is not None
        first = json.loads(recognize.stdout.readline())
        assert [f["name"] for f in first["faces"]] == [None]
        with srv.client(key) as client:
            added = client.post(
                f"{API}/people/Yao Ming/faces", files={"file": photo("yaoming.jpg")}
            )
            assert added.status_code == 201
        enrolled_at = time.monotonic()
        seen_at = None
        for line in recognize.stdout:
            frame = json.loads(line)
            if [f["name"] for f in frame["faces"]] == ["Yao Ming"]:
                seen_at = time.monotonic()
                break
        assert seen_at is not None, "the clip ended before recognize saw the new person"
        assert seen_at - enrolled_at < 5.0
    finally:
        recognize.kill()
        recognize.wait(10)
        assert srv.stop() == 130


def test_a_port_in_use_is_one_sentence(server: tuple[Server, str, str]) -> None:
    srv, _, _ = server
    port = srv.url.rsplit(":", 1)[1]
    done = cli("serve", "--port", port, "--db", str(srv.db), "--ctx", "-1", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Error: Port {port} on 127.0.0.1 is already in use; pick another with --port."
    )


def test_serve_without_the_server_extra_names_the_install_command() -> None:
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        "    if name == 'uvicorn': raise ImportError('no uvicorn', name='uvicorn')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "from face_recognizer.cli import main\n"
        "main(['serve'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: The server needs uvicorn, which is not installed.")
    assert "-e '.[server]'" in done.stderr


def test_openapi_docs_list_every_endpoint(server: tuple[Server, str, str]) -> None:
    srv, _, _ = server
    with srv.client() as client:
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    paths = set(schema["paths"])
    assert {
        f"{API}/health",
        f"{API}/people",
        f"{API}/people/{{name}}/faces",
        f"{API}/people/{{name}}",
        f"{API}/faces/{{face_id}}",
        f"{API}/faces/{{face_id}}/crop.png",
        f"{API}/identify",
        f"{API}/verify",
    } <= paths


# -- the store methods the server uses, on both stores ----------------------------------------
def test_store_keys_and_single_faces_on_both_stores(store_spec: str) -> None:
    from face_recognizer.store import EnrolFace, open_store

    rng = np.random.default_rng(3)

    def face(i: int) -> EnrolFace:
        vector = rng.normal(size=512).astype(np.float32)
        crop = np.full((112, 112, 3), i, np.uint8)
        return EnrolFace(vector / np.linalg.norm(vector), crop, f"f{i}", f"hash{i}", 0.9, 80, 99)

    with open_store(store_spec) as store:
        store.add_faces("Ana", [face(1), face(2)], "rid")
        store.add_faces("Ben", [face(3)], "rid")
        ids = {p.name: p.id for p in store.people()}
        by_person = store.face_ids([ids["Ana"], ids["Ben"]])
        assert [len(by_person[ids["Ana"]]), len(by_person[ids["Ben"]])] == [2, 1]
        first = by_person[ids["Ana"]][0]
        png = store.crop_png(first)
        assert png is not None
        assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[0, 0, 0] == 1
        assert store.crop_png(999_999) is None
        assert store.remove_face(first) == ("Ana", 1)
        assert store.remove_face(first) is None
        assert store.remove_face(by_person[ids["Ben"]][0]) == ("Ben", 0)
        assert [p.name for p in store.people()] == ["Ana"]

        store.add_api_key("door", "a" * 64, False)
        store.add_api_key("kiosk", "b" * 64, True)
        with pytest.raises(GalleryError, match="A key named 'door' exists already"):
            store.add_api_key("door", "c" * 64, True)
        assert [(k.name, k.read_only) for k in store.api_keys()] == [
            ("door", False),
            ("kiosk", True),
        ]
        found = store.api_key_by_hash("b" * 64)
        assert found is not None
        assert found.name == "kiosk"
        assert store.api_key_by_hash("d" * 64) is None
        assert store.remove_api_key("kiosk") is True
        assert store.remove_api_key("kiosk") is False
        assert store.api_key_by_hash("b" * 64) is None


def test_reindex_refuses_faces_that_came_as_embeddings(tmp_path: Path, engine) -> None:
    """An API embedding has no photo (its stored crop is blank): re-embedding that blank crop
    would store a meaningless vector, so reindex refuses and changes nothing."""
    from face_recognizer.enrol import enrol_files, reembed
    from face_recognizer.store import open_store
    from face_recognizer.store.base import EnrolFace

    rng = np.random.default_rng(11)
    vector = rng.normal(size=512).astype(np.float32)
    vector /= np.linalg.norm(vector)
    blank = np.zeros((112, 112, 3), np.uint8)
    with open_store(tmp_path / "db") as store:
        enrol_files(engine, store, "Yao Ming", [sample_path("yaoming.jpg")])
        rid = engine.pack.recognizer_id
        store.add_faces(
            "Vector Person", [EnrolFace(vector, blank, "api:embedding 1", "ab", 1, 0, 0)], rid
        )
        before = store.embeddings(rid)
        with pytest.raises(GalleryError) as refused:
            reembed(engine, store)
        assert str(refused.value) == (
            "1 face of 'Vector Person' came as embeddings without a photo and cannot be "
            "re-embedded; nothing was changed. Remove them (people remove NAME, or DELETE them "
            "through the API) and run reindex again."
        )
        after = store.embeddings(rid)
    assert np.array_equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])
