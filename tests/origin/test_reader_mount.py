"""The origin app also serves the reader pages over its public tree."""

from __future__ import annotations

from .support import Api, article


async def test_reader_pages_are_mounted(api: Api) -> None:
    _, out = await api.call("POST", "/api/v1/articles", article("r1"))
    await api.flush()
    home = await api.client.get("/")
    assert home.status == 200 and "text/html" in home.headers["Content-Type"]
    page = await api.client.get(f"/v/{out['versions'][0]['bundle_id']}")
    assert page.status == 200
