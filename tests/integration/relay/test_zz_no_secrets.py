"""No secret anywhere: after everything this package did to the distributed stack (its name
sorts last, so it runs last, while the package's `stack` is still up), grep every process's
log, every answer of the API calls made here and a dump of the database for the keys the
stack used: the relayer's and validators' private keys, the admin token, API keys made here,
and an RPC provider's secret in an RPC URL.

The RPC secret is put to work first: alpha's RPC URL is replaced by one that carries
${HUB_RPC_SECRET_TEST} in its query and password, through a small proxy to alpha's node; the
workers scan through it, then the proxy goes away (a provider outage), so that every process
that reads alpha fails with that URL in hand, and the URL is set back."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN_TOKEN, RPC_SECRET, free_port
from tests.integration.helpers import islands
from tests.integration.relay.stack import Stack, wait_for
from tests.integration.relay.test_relay import post

pytestmark = pytest.mark.integration
SECRET_REF = "${HUB_RPC_SECRET_TEST}"  # the stack's processes have it = RPC_SECRET


@dataclass
class Recorder:
    """Calls the API and keeps every answer, headers and body, error answers included."""

    base: str
    answers: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)
        self.answers.append(f"{method} {path} {response.status_code} {response.headers}")
        self.answers.append(response.text)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.call("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


class Proxy:
    """A JSON-RPC endpoint on 127.0.0.1 that forwards to a node, until it is stopped."""

    def __init__(self, upstream: str) -> None:
        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = httpx.post(
                    upstream, content=body, headers={"Content-Type": "application/json"}
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Forward)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_key(stack: Stack, role: str) -> str:
    """`islands keys create --role ROLE` on the stack's database, as an operator does."""
    made = islands("keys", "create", "--role", role, database_url=stack.db_url)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def revoke(stack: Stack, key: str) -> None:
    # The hub has no revoke command yet; an operator revokes a key in the database.
    digest = hashlib.sha256(key.encode()).hexdigest()
    sql = f"UPDATE api_keys SET revoked_at = now() WHERE key_hash = '{digest}'"  # noqa: S608
    psql(stack, "-c", sql)


def psql_url(stack: Stack) -> str:
    return make_url(stack.db_url).set(drivername="postgresql").render_as_string(False)


def psql(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        ["psql", psql_url(stack), "-v", "ON_ERROR_STOP=1", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def cursor(api: Recorder, chain: str) -> int:
    return int(api.get(f"/v1/chains/{chain}")["relay"]["cursor_block"])


def through_a_secret_url(stack: Stack, api: Recorder, admin: str) -> None:
    """Alpha read through a URL with the RPC secret, then that URL failing, then restored."""
    alpha = next(c for c in stack.doc["chains"] if c["name"] == "alpha")
    gamma = next(c for c in stack.doc["chains"] if c["name"] == "gamma")
    proxy = Proxy(alpha["rpc_url"])
    secret_urls = [
        f"http://127.0.0.1:{proxy.port}/?apikey={SECRET_REF}",
        f"http://rpc:{SECRET_REF}@127.0.0.1:{proxy.port}/",
    ]
    try:
        changed = api.call("PATCH", "/v1/chains/alpha", admin, json={"rpc_urls": secret_urls})
        assert changed.status_code == 200, changed.text
        start = cursor(api, "alpha")
        posted = post(stack, alpha, gamma["chain_id"], gamma["inbox"], b"through the proxy")
        wait_for(
            "the workers scanning through the secret URL", lambda: cursor(api, "alpha") > start + 4
        )
        wait_for(
            "the message seen", lambda: api.call("GET", f"/v1/messages/{posted}").status_code == 200
        )
        api.get("/v1/chains/alpha")  # the API reads alpha live through it
    finally:
        proxy.stop()
    stalled = cursor(api, "alpha")
    time.sleep(3)  # several ticks (HUB_TICK_SECONDS) of every process failing on the dead URL
    live = api.get("/v1/chains/alpha")["live"]  # the live read fails: its error is answered
    assert live["reachable"] is False and live["error"], live
    dead = api.call(
        "PATCH",
        "/v1/chains/alpha",
        admin,
        json={"rpc_urls": [f"http://127.0.0.1:{free_port()}/?apikey={SECRET_REF}"]},
    )
    assert dead.status_code == 422 and "apikey=***" in dead.text, dead.text
    back = api.call("PATCH", "/v1/chains/alpha", ADMIN_TOKEN, json={"rpc_urls": [alpha["rpc_url"]]})
    assert back.status_code == 200, back.text
    wait_for("alpha scanned again", lambda: cursor(api, "alpha") > stalled)


def refusals(api: Recorder, keys: dict[str, str]) -> None:
    """Error answers: unknown things, bad input, and keys that are wrong, revoked or weak."""
    missing = "0x" + "ee" * 32
    for path in (f"/v1/messages/{missing}", f"/v1/transfers/{missing}", "/v1/chains/nope"):
        assert api.call("GET", path).status_code == 404
    assert api.call("GET", "/v1/assets/NOPE").status_code == 404
    assert api.call("GET", "/v1/messages", params={"cursor": "not-a-cursor"}).status_code == 422
    route = {"src": "alpha", "dst": "beta"}
    near_miss = keys["admin"][:-4] + "abcd"
    assert api.call("POST", "/v1/routes", near_miss, json=route).status_code == 401
    assert api.call("POST", "/v1/routes", keys["revoked"], json=route).status_code == 401
    assert api.call("POST", "/v1/routes", keys["operator"], json=route).status_code == 403
    assert (
        api.call("POST", "/v1/routes", keys["admin"], json={"src": keys["admin"]}).status_code
        == 422
    )
    signature = {"signature": "0x" + "ab" * 65}
    assert (
        api.call("POST", f"/v1/messages/{missing}/attestations", json=signature).status_code == 404
    )


def reads(api: Recorder) -> None:
    """List and get every kind of thing the API shows."""
    for chain in api.get("/v1/chains", include_retired=True):
        api.get(f"/v1/chains/{chain['name']}")
    for asset in api.get("/v1/assets"):
        api.get(f"/v1/assets/{asset['symbol']}")
    for route in api.get("/v1/routes"):
        api.get(f"/v1/routes/{route['id']}")
    api.get("/v1/alerts")
    messages, page = [], api.get("/v1/messages", limit=500)
    messages += page["items"]
    while page["next_cursor"]:
        page = api.get("/v1/messages", limit=500, cursor=page["next_cursor"])
        messages += page["items"]
    one_per_state = {m["state"]: m for m in messages}
    for message in [*messages[:10], *one_per_state.values()]:
        api.get(f"/v1/messages/{message['id']}")
    transfers = [m for m in messages if m["transfer"]][:10]
    for message in transfers:
        api.get(f"/v1/transfers/{message['id']}")
        api.get("/v1/transfers", src_tx_hash=message["src_tx_hash"])
    api.get("/healthz")
    api.call("GET", "/readyz")


@dataclass
class Exercised:
    secrets: dict[str, str]
    answers: str
    logs: dict[str, str]
    dump: str
    key_hashes: list[str]


@pytest.fixture(scope="module")
def exercised(stack: Stack) -> Iterator[Exercised]:
    api = Recorder(stack.api)
    keys = {"admin": make_key(stack, "admin"), "operator": make_key(stack, "operator")}
    keys["revoked"] = make_key(stack, "admin")
    revoke(stack, keys["revoked"])
    through_a_secret_url(stack, api, keys["admin"])
    refusals(api, keys)
    reads(api)
    secrets = {
        "relayer key": stack.key("relayer"),
        **{f"validator key {i + 1}": stack.key("validator", i) for i in range(3)},
        "admin token": ADMIN_TOKEN,
        **{f"{name} API key": key for name, key in keys.items()},
        "RPC secret": RPC_SECRET,
    }
    logs = {
        p.name: p.read_bytes().decode(errors="replace")
        for p in sorted(stack.log_dir.iterdir())
        if p.is_file()
    }
    dump = subprocess.run(
        ["pg_dump", "--no-owner", psql_url(stack)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    hashes = [hashlib.sha256(k.encode()).hexdigest() for k in keys.values()]
    yield Exercised(secrets, "\n".join(api.answers), logs, dump, hashes)


def forms(secret: str) -> list[str]:
    """The ways a secret can be written: as is, and a hex key without 0x in either case."""
    bare = secret.removeprefix("0x")
    return sorted({secret, bare, bare.lower(), bare.upper()})


SECRETS = [
    "relayer key",
    "validator key 1",
    "validator key 2",
    "validator key 3",
    "admin token",
    "admin API key",
    "operator API key",
    "revoked API key",
    "RPC secret",
]


def test_the_stack_wrote_logs_and_the_api_answered(exercised: Exercised) -> None:
    assert {"api.log", "relay.log", "beat.log"} <= set(exercised.logs)
    assert {f"validator-{i}.log" for i in (1, 2, 3)} <= set(exercised.logs)
    assert "/v1/chains/alpha" in exercised.logs["api.log"]  # the API logged its requests
    assert exercised.answers.count("\n") > 50


@pytest.mark.parametrize("name", SECRETS)
def test_no_answer_holds_a_secret(exercised: Exercised, name: str) -> None:
    for form in forms(exercised.secrets[name]):
        assert form not in exercised.answers, f"the {name} is in an API answer"


@pytest.mark.parametrize("name", SECRETS)
def test_no_log_holds_a_secret(exercised: Exercised, name: str) -> None:
    for log, text in exercised.logs.items():
        for form in forms(exercised.secrets[name]):
            line = next((ln for ln in text.splitlines() if form in ln), None)
            assert line is None, f"the {name} is in {log}: {line}"


@pytest.mark.parametrize("name", SECRETS)
def test_the_database_holds_no_secret_in_clear(exercised: Exercised, name: str) -> None:
    for form in forms(exercised.secrets[name]):
        assert form not in exercised.dump, f"the {name} is in the database"


def test_the_database_holds_what_it_should_instead(exercised: Exercised) -> None:
    assert "apikey=***" in exercised.dump  # the audit log recorded the URL change, redacted
    for digest in exercised.key_hashes:
        assert digest in exercised.dump  # API keys only as their hashes
