"""Articles, versions, editions, notices and media through the API, checked in the bundles."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from PIL import Image

from tamizdat.bundles.verify import verify_bundle
from tamizdat.server.appkeys import ORIGIN

from .support import Api, article, image_bytes

NOTICE = {"id": "risk", "regions": ["ru", "BY"], "text": {"en": "Risky where you are.", "ru": "Опасно."}}


async def bundle_zip(api: Api, bundle_id: str) -> zipfile.ZipFile:
    await api.flush()
    resp = await api.client.get(f"/bundles/{bundle_id}.zip")
    assert resp.status == 200
    return zipfile.ZipFile(io.BytesIO(await resp.read()))


def manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    import base64

    env = json.loads(zf.read("meta/manifest.dsse.json"))
    return json.loads(base64.b64decode(env["payload"]))  # type: ignore[no-any-return]


async def test_create_get_list(api: Api) -> None:
    status, out = await api.call("POST", "/api/v1/articles", article("a1"))
    assert status == 201
    assert out["id"] == "a1" and out["current_version"] == 1 and out["state"] == "pending"
    assert out["article"]["title"] == "Title of a1"
    await api.flush()
    status, out = await api.call("GET", "/api/v1/articles/a1")
    assert out["state"] == "published" and out["versions"][0]["state"] == "published"
    for n in range(2, 5):
        await api.call("POST", "/api/v1/articles", article(f"a{n}"))
    status, page = await api.call("GET", "/api/v1/articles?limit=2&offset=1")
    assert status == 200 and page["total"] == 4 and [a["id"] for a in page["articles"]] == ["a2", "a3"]
    assert all(a["versions"][0]["bundle_id"] for a in page["articles"])


async def test_update_makes_a_superseding_version(api: Api, root_keyid: str) -> None:
    _, v1 = await api.call("POST", "/api/v1/articles", article("a1"))
    status, same = await api.call("PUT", "/api/v1/articles/a1", article("a1"))
    assert status == 200 and same["changed"] is False and same["current_version"] == 1
    status, v2 = await api.call("PUT", "/api/v1/articles/a1", article("a1", body="Corrected."))
    assert status == 200 and v2["changed"] is True and v2["current_version"] == 2
    old_id, new_id = v2["versions"][0]["bundle_id"], v2["versions"][1]["bundle_id"]
    assert old_id == v1["versions"][0]["bundle_id"]
    zf = await bundle_zip(api, new_id)
    m = manifest(zf)
    assert m["supersedes"] == [old_id] and m["kind"] == "article"
    assert m["articles"][0]["version"] == 2
    _, got = await api.call("GET", "/api/v1/articles/a1")
    assert [v["state"] for v in got["versions"]] == ["superseded", "published"]
    # an explicit expected version must be the next one
    status, _ = await api.call("PUT", "/api/v1/articles/a1", article("a1", body="Again.", version=3))
    assert status == 200


async def test_notices_are_carried_signed(api: Api, root_keyid: str) -> None:
    status, notice = await api.call("POST", "/api/v1/notices", NOTICE)
    assert status == 201 and notice["regions"] == ["BY", "RU"]
    _, out = await api.call("POST", "/api/v1/articles", article("a1", notices=["risk"]))
    zf = await bundle_zip(api, out["versions"][0]["bundle_id"])
    m = manifest(zf)
    assert m["notices"] == [{"id": "risk", "regions": ["BY", "RU"], "text": NOTICE["text"]}]
    assert m["articles"][0]["notices"] == ["risk"]
    # changing the notice text makes the next PUT of the same article a new version
    changed = {**NOTICE, "text": {"en": "New words."}}
    assert (await api.call("PUT", "/api/v1/notices/risk", changed))[0] == 200
    _, again = await api.call("PUT", "/api/v1/articles/a1", article("a1", notices=["risk"]))
    assert again["changed"] is True
    status, listing = await api.call("GET", "/api/v1/notices")
    assert [n["id"] for n in listing["notices"]] == ["risk"]


async def test_notice_crud(api: Api) -> None:
    assert (await api.call("PUT", "/api/v1/notices/n1", {"regions": ["*"], "text": {"en": "x"}}))[0] == 201
    assert (await api.call("GET", "/api/v1/notices/n1"))[1]["regions"] == ["*"]
    resp = await api.client.delete("/api/v1/notices/n1", headers=api.headers())
    assert resp.status == 204
    assert (await api.call("GET", "/api/v1/notices/n1"))[0] == 404


async def test_edition_carries_current_versions_and_all_notices(api: Api, root_keyid: str) -> None:
    await api.call("POST", "/api/v1/notices", NOTICE)
    await api.call("POST", "/api/v1/notices", {"id": "other", "regions": ["*"], "text": {"en": "Everywhere."}})
    await api.call("POST", "/api/v1/articles", article("a1", notices=["risk"]))
    await api.call("POST", "/api/v1/articles", article("a2", lang="ru", notices=["other"]))
    await api.call("PUT", "/api/v1/articles/a2", article("a2", lang="ru", notices=["other"], title="v2"))
    status, ed = await api.call(
        "POST", "/api/v1/editions", {"articles": ["a1", "a2"], "title": "Morning", "lang": "ru", "id": "morning"}
    )
    assert status == 201, ed
    assert ed["articles"] == [{"id": "a1", "version": 1}, {"id": "a2", "version": 2}]
    zf = await bundle_zip(api, ed["bundle_id"])
    m = manifest(zf)
    assert m["kind"] == "edition" and m["title"] == "Morning"
    assert sorted(n["id"] for n in m["notices"]) == ["other", "risk"]
    assert '<html lang="ru"' in zf.read("index.html").decode()
    _, got = await api.call("GET", "/api/v1/editions/morning")
    assert got["state"] == "published"
    _, listing = await api.call("GET", "/api/v1/editions")
    assert listing["total"] == 1
    status, _ = await api.call("POST", "/api/v1/editions", {"articles": ["a1"], "id": "morning"})
    assert status == 409
    status, out = await api.call("POST", "/api/v1/editions/morning/retraction", {"reason": "error"})
    assert status == 200 and out["state"] == "retracted"


async def test_media_is_stripped_and_used(api: Api, tmp_path: Any, root_keyid: str) -> None:
    raw = image_bytes("JPEG", (32, 20), exif=True)
    assert b"SecretCam" in raw
    status, media = await api.upload(raw, "image/jpeg")
    assert status == 201 and media["type"] == "image/jpeg" and media["width"] == 32
    status, again = await api.upload(raw, "image/jpeg")
    assert status == 200 and again["id"] == media["id"]
    assert (await api.call("GET", f"/api/v1/media/{media['id']}"))[1]["height"] == 20
    doc = article("pic", images=[{"media": media["id"], "caption": "A red square", "alt": "red"}])
    _, out = await api.call("POST", "/api/v1/articles", doc)
    zf = await bundle_zip(api, out["versions"][0]["bundle_id"])
    names = [n for n in zf.namelist() if n.startswith("media/")]
    assert len(names) == 1
    data = zf.read(names[0])
    assert b"SecretCam" not in data
    assert not Image.open(io.BytesIO(data)).getexif()
    data_doc = json.loads(zf.read("articles/1.json"))
    assert data_doc["images"][0]["caption"] == "A red square"
    path = tmp_path / "b.zip"
    path.write_bytes(await (await api.client.get(f"/bundles/{out['versions'][0]['bundle_id']}.zip")).read())
    assert verify_bundle(path, root_keyid=root_keyid).manifest.articles[0].id == "pic"


async def test_status(api: Api) -> None:
    await api.call("POST", "/api/v1/articles", article("a1"))
    _, st = await api.call("GET", "/api/v1/status")
    assert st["pending_changes"] >= 1
    await api.flush()
    _, st = await api.call("GET", "/api/v1/status")
    assert st["pending_changes"] == 0 and st["bundles"] == 1 and st["index_version"] >= 2
    assert api.app[ORIGIN].publisher.last_error is None
