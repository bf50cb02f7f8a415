"""A tiny requests wrapper the server tests use to talk to the real server (not a mock)."""

from __future__ import annotations

import json
from typing import Any

import requests

TIMEOUT = 30


class Api:
    """Requests against one server as one user (``Authorization: Token <token>``)."""

    def __init__(self, url: str, token: str, username: str = "", project: int = 0) -> None:
        self.url = url
        self.token = token
        self.username = username
        self.project = project
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {token}"

    @property
    def my_data(self) -> str:
        """The user's My Data path in their project."""
        return f"/project/{self.project}/user/{self.username}"

    @property
    def team(self) -> str:
        """Team Data of the user's project."""
        return f"/project/{self.project}/team"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        """Send one request to ``url + path``."""
        kw.setdefault("timeout", TIMEOUT)
        return self.http.request(method, self.url + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def ls(self, path: str, **params: Any) -> requests.Response:
        """GET /api/v1/storage/ls/."""
        return self.get("/api/v1/storage/ls/", params={"path": path, **params})

    def names(self, path: str, **params: Any) -> list[str]:
        """Names of one page of a listing (asserts 200)."""
        response = self.ls(path, **params)
        assert response.status_code == 200, response.text
        return [entry["name"] for entry in response.json()["results"]]

    def stat(self, path: str) -> requests.Response:
        """GET /api/v1/storage/stat/."""
        return self.get("/api/v1/storage/stat/", params={"path": path})

    def mkdir(self, *paths: str, exist_ok: bool = True) -> requests.Response:
        """POST /api/v1/storage/paths/."""
        return self.post(
            "/api/v1/storage/paths/", json={"paths": list(paths), "exist_ok": exist_ok}
        )

    def upload(
        self,
        folder: str | None,
        name: str,
        data: bytes,
        kind: str = "file",
        tags: list[str] | None = None,
    ) -> requests.Response:
        """Multipart upload of a file (or dataset) into ``folder``."""
        fields: dict[str, str] = {"name": name}
        if folder is not None:
            fields["path"] = folder
        if tags is not None:
            fields["tags"] = json.dumps(tags)
        endpoint = "/api/v3/storage/files/" if kind == "file" else "/api/v1/datasets/"
        return self.post(endpoint, data=fields, files={"file": ("blob", data)})

    def upload_ok(self, folder: str | None, name: str, data: bytes, **kw: Any) -> dict[str, Any]:
        """Upload and assert 201; returns the resource."""
        response = self.upload(folder, name, data, **kw)
        assert response.status_code == 201, response.text
        return response.json()

    def download(self, file_id: int, **headers: str) -> requests.Response:
        """GET a file's download."""
        return self.get(f"/api/v3/storage/files/{file_id}/download/", headers=headers)
