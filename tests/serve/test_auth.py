"""API keys: the keys file holds salted hashes only, ``docsort keys`` creates, lists and
revokes, and a server with ``--api-keys`` refuses every /v1 path without a valid key (401 with
WWW-Authenticate, 403 unknown or revoked) while /healthz, /readyz and /metrics stay open."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docsort.errors import DocsortError
from docsort.serve import create_app
from docsort.serve.auth import KeyRing, create_key, read_keys, revoke_key
from docsort.serve.limits import check_host

ABSTRACT = "We observe the galaxy cluster with a radio telescope and find dark matter halos."


def docsort(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """``docsort ARGS`` in this process (a child process would spend seconds importing)."""
    import docsort.cli

    argv, sys.argv = sys.argv, ["docsort", *args]
    try:
        docsort.cli.main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def two_keys(folder: Path) -> tuple[Path, str, str]:
    path = folder / "keys.json"
    first, _ = create_key(path, "ci")
    second, _ = create_key(path, "web page")
    return path, first, second


@pytest.fixture
def keys_file(tmp_path: Path) -> tuple[Path, str, str]:
    """A file of two keys that a test may change."""
    return two_keys(tmp_path)


@pytest.fixture(scope="module")
def shared_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A file of two keys no test changes (each key costs a scrypt)."""
    return two_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def guarded(trained_model_dir: Path, shared_keys, tmp_path_factory) -> Iterator[TestClient]:
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.sqlite'}"
    with TestClient(create_app(trained_model_dir, store, api_keys=shared_keys[0])) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_file_holds_salted_hashes_owner_only(shared_keys) -> None:
    path, first, second = shared_keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert first not in text and second not in text
    assert first.split("_")[2] not in text  # not even the secret part
    entries = read_keys(path)
    assert [e.name for e in entries] == ["ci", "web page"]
    assert len({e.salt for e in entries}) == 2 and len({e.hash for e in entries}) == 2
    assert [first.startswith(f"dsk_{e.id}_") for e in entries] == [True, False]
    assert not any(e.revoked for e in entries)


def test_concurrent_creates_keep_every_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: create_key(path, f"k{i}")[1].id, range(4)))
    assert sorted(e.id for e in read_keys(path)) == sorted(made)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keys.json.lock", "keys.json"]


def test_keys_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "keys.json"
    code, out, err = docsort(capsys, "keys", "create", "--file", str(path), "--name", "ci")
    assert code == 0 and "shown only this once" in err
    key = out.strip()
    assert key.startswith("dsk_") and len(out.splitlines()) == 1  # stdout: the key alone
    key_id = key.split("_")[1]

    code, out, _ = docsort(capsys, "keys", "list", "--file", str(path))
    assert code == 0 and key_id in out and "ci" in out and "active" in out
    assert read_keys(path)[0].hash not in out and key not in out

    code, _, err = docsort(capsys, "keys", "revoke", key_id, "--file", str(path))
    assert code == 0 and f"revoked key {key_id}" in err
    code, _, err = docsort(capsys, "keys", "revoke", key, "--file", str(path))  # by the key
    assert code == 0 and "already revoked" in err
    code, out, _ = docsort(capsys, "keys", "list", "--file", str(path))
    assert "revoked" in out and "active" not in out

    for args, reason in [
        (("revoke", "0123456789ab"), "no key with id '0123456789ab'"),
        (("list",), "does not exist: create a key with docsort keys create"),
        (("create", "--name", "x" * 101), "--name is 101 characters"),
    ]:
        target = path if args[0] != "list" else tmp_path / "missing.json"
        code, _, err = docsort(capsys, "keys", *args, "--file", str(target))
        assert code == 2 and reason in err and len(err.strip().splitlines()) == 1, err


def test_every_v1_route_needs_a_valid_key(guarded: TestClient, shared_keys) -> None:
    path, first, second = shared_keys
    routes = [("post", "/v1/classify", {"text": ABSTRACT}), ("get", "/v1/models", None),
              ("post", "/v1/feedback", {"text": ABSTRACT, "label": "astro-ph"}),
              ("get", "/v1/nothing-here", None)]  # fmt: skip
    for method, route, body in routes:
        answer = guarded.request(method, route, json=body)
        assert answer.status_code == 401, (route, answer.text)
        assert answer.headers["www-authenticate"] == 'Bearer realm="docsort"'
        assert "Authorization: Bearer KEY" in answer.json()["detail"]
    cases = [
        ({"Authorization": "Basic YWxhZGRpbjpvcGVu"}, 401, "must read Bearer KEY"),
        ({"Authorization": "Bearer"}, 401, "must read Bearer KEY"),
        (bearer("not-a-docsort-key"), 401, "not a docsort API key"),
        (bearer("dsk_0123456789ab_" + "x" * 43), 403, "not known"),
        (bearer(first[:-4] + "AAAA"), 403, "not known"),  # a known id, the wrong secret
    ]
    for headers, status, reason in cases:
        answer = guarded.post("/v1/classify", json={"text": ABSTRACT}, headers=headers)
        assert answer.status_code == status, (headers, answer.text)
        assert reason in answer.json()["detail"]
        if status == 401:
            assert 'error="invalid_request"' in answer.headers["www-authenticate"]
    before = guarded.app.state.service.store.count("predictions")
    assert before == 0
    for key in (first, second):
        answer = guarded.post("/v1/classify", json={"text": ABSTRACT}, headers=bearer(key))
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "astro-ph"
    assert guarded.get("/v1/models", headers=bearer(first)).status_code == 200
    feedback = {"text": ABSTRACT, "label": "astro-ph"}
    assert guarded.post("/v1/feedback", json=feedback, headers=bearer(first)).status_code == 201


def test_health_metrics_and_the_schema_stay_open(guarded: TestClient) -> None:
    for route in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert guarded.get(route).status_code == 200, route


def test_a_revoked_key_is_refused_from_its_next_request(trained_model_dir: Path, keys_file) -> None:
    path, first, second = keys_file
    body = {"text": ABSTRACT}
    with TestClient(create_app(trained_model_dir, api_keys=path)) as guarded:
        revoked_and_added(guarded, path, first, second, body)


def revoked_and_added(guarded: TestClient, path: Path, first: str, second: str, body) -> None:
    assert guarded.post("/v1/classify", json=body, headers=bearer(second)).status_code == 200
    revoke_key(path, second.split("_")[1])
    answer = guarded.post("/v1/classify", json=body, headers=bearer(second))
    assert answer.status_code == 403 and "was revoked" in answer.json()["detail"]
    assert guarded.post("/v1/classify", json=body, headers=bearer(first)).status_code == 200
    # a key created while the server runs is accepted without a restart
    third, _ = create_key(path, "later")
    assert guarded.post("/v1/classify", json=body, headers=bearer(third)).status_code == 200


def test_a_large_body_without_a_key_is_refused_before_it_is_read(guarded: TestClient) -> None:
    start = time.perf_counter()
    answer = guarded.post("/v1/classify", content=b"x" * (10 * 1024 * 1024),
                          headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 401 and time.perf_counter() - start < 1


def test_the_schema_declares_the_bearer_scheme_and_401_403(guarded: TestClient) -> None:
    schema = guarded.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]
        ["securitySchemes"]["bearer"]["description"]}  # fmt: skip
    paths = schema["paths"]
    for route in ("/v1/classify", "/v1/feedback", "/v1/models"):
        (operation,) = paths[route].values()
        assert operation["security"] == [{"bearer": []}], route
        assert {"401", "403"} <= set(operation["responses"]), route
    for route in ("/healthz", "/readyz", "/metrics"):
        (operation,) = paths[route].values()
        assert "security" not in operation and "401" not in operation["responses"]


def test_a_keys_file_without_an_active_key_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key, _ = create_key(path)
    revoke_key(path, key)
    with pytest.raises(DocsortError, match="holds no active key: create one with docsort keys"):
        KeyRing(path)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"keys": []}))
    with pytest.raises(DocsortError, match="is not a docsort API keys file"):
        KeyRing(broken)


def test_serve_with_a_missing_keys_file_is_one_line(
    trained_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "keys.json"
    code, _, err = docsort(capsys, "serve", str(trained_model_dir), "--api-keys", str(missing))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"does not exist: create a key with docsort keys create --file {missing}" in err


def test_with_keys_any_host_may_be_served() -> None:
    check_host("0.0.0.0", api_keys=True)
    with pytest.raises(DocsortError, match="give --api-keys FILE"):
        check_host("0.0.0.0")
