"""A NATS that wants credentials and mutual TLS: a real nats-server with a password, an nkey
and `tls { verify: true }`, certificates from a CA made here, and a real worker process that
does its whole job path through it. A wrong password or a server certificate the worker does
not trust stops start-up with one line that says which."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nats as nats_py
import nkeys
import pytest
from nats.aio.client import Client

from tests.broker.operator_mode import Operator
from tests.broker.pki import Authority, Issued
from tests.conftest import ROOT
from tests.http.helpers import call
from tests.jobs.conftest import JOB_ENV, create_agent, go_task, record_in
from tests.jobs.receiver import Receiver
from tests.streaming.helpers import assert_run, sse_frames
from worker.broker.connection import Broker, NatsRefused, connect_options
from worker.config import Settings
from worker.testing import NatsServer, WorkerProcess, free_port, wait_for

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test server's own
WRONG = "not the password"
TOKEN = "s3cret-token"  # noqa: S105 - the test server's own


@dataclass(frozen=True)
class Pki:
    """The CA the server's and the clients' certificates come from, and a rogue one."""

    ca: Authority
    rogue: Authority
    server: Issued
    client: Issued


@dataclass(frozen=True)
class Secured:
    """The secured server, its monitoring port, and the nkey user it knows."""

    server: NatsServer
    monitor: int
    nkey_seed: Path

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority("agentos-test", folder)
    return Pki(
        ca=ca,
        rogue=Authority("rogue", folder),
        server=ca.issue("nats", hosts=("127.0.0.1", "localhost")),
        client=ca.issue("worker"),
    )


def nkey_user(folder: Path) -> tuple[str, Path]:
    """A new user nkey: its public key (for the server) and a file with its seed."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    path = folder / "worker.nk"
    path.write_bytes(seed)
    return nkeys.from_seed(bytearray(seed)).public_key.decode(), path


@pytest.fixture(scope="module")
def secured(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    public, seed = nkey_user(tmp_path_factory.mktemp("nkey"))
    monitor = free_port()
    config = f"""
        http: "127.0.0.1:{monitor}"
        authorization {{
          users = [
            {{user: worker, password: "{PASSWORD}"}}
            {{nkey: {public}}}
          ]
        }}
        tls {{
          cert_file: "{pki.server.cert}"
          key_file: "{pki.server.key}"
          ca_file: "{pki.ca.ca_file}"
          verify: true
        }}
    """
    server = NatsServer(config=config).start()
    yield Secured(server=server, monitor=monitor, nkey_seed=seed)
    server.close()


def client_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.ca_file))
    context.load_cert_chain(str(pki.client.cert), str(pki.client.key))
    return context


def worker_env(secured: Secured, pki: Pki, state: Path, **overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **JOB_ENV,
        "WORKER_NATS_URL": secured.url,
        "WORKER_NATS_USER": "worker",
        "WORKER_NATS_PASSWORD": PASSWORD,
        "WORKER_NATS_TLS_CA": str(pki.ca.ca_file),
        "WORKER_NATS_TLS_CERT": str(pki.client.cert),
        "WORKER_NATS_TLS_KEY": str(pki.client.key),
        "WORKER_HTTP_HOST": "127.0.0.1",
        "WORKER_HTTP_PORT": "0",
        "WORKER_STATE_DIR": str(state),
        "WORKER_AGENTS_BUCKET": f"agents_{tag}",
        "WORKER_THREADS_BUCKET": f"threads_{tag}",
        "WORKER_TASKS_SUBJECT": f"agent.execute.{tag}",
        **overrides,
    }


@pytest.fixture
async def go_side(secured: Secured, pki: Pki) -> AsyncIterator[Client]:
    """The Go side's publisher: the same password and a client certificate of the same CA."""
    client = await nats_py.connect(
        secured.url, user="worker", password=PASSWORD, tls=client_tls(pki)
    )
    yield client
    await client.drain()


async def connections(http: aiohttp.ClientSession, secured: Secured) -> list[dict[str, Any]]:
    """The server's view of its clients (``/connz``, with who authenticated)."""
    async with http.get(f"http://127.0.0.1:{secured.monitor}/connz?auth=true") as resp:
        conns: list[dict[str, Any]] = (await resp.json())["connections"]
        return conns


async def test_a_worker_runs_its_whole_job_path_through_tls_and_a_password(
    secured: Secured,
    pki: Pki,
    go_side: Client,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    env = worker_env(secured, pki, tmp_path)
    worker = WorkerProcess(env).start()
    receiver = await Receiver().start()
    try:
        # Every connection the worker opened is over TLS, as the password's user: the shared
        # one (jobs, key-value, frames) and the live frames' own.
        conns = await connections(http, secured)
        mine = {c["name"]: c for c in conns if c.get("name", "").startswith("agentos-worker")}
        assert sorted(n.split(":")[0] for n in mine) == [
            "agentos-worker",
            "agentos-worker-live-frames",
        ], mine
        for conn in mine.values():
            assert conn["tls_version"], conn
            assert conn["authorized_user"] == "worker", conn

        # An agent over HTTP, a job on agent.execute, its frames over SSE while it runs.
        agent_id = await create_agent(
            http, worker, {"type": "steps", "config": {"steps": 20, "step_delay": "50ms"}}
        )
        task_id = str(uuid.uuid4())
        await go_side.publish(
            env["WORKER_TASKS_SUBJECT"], go_task(task_id, agent_id, "go", receiver.url(task_id))
        )
        await wait_for(
            lambda: record_in(http, worker.url, task_id, "running"), what="the job running"
        )
        async with http.get(f"{worker.url}/v1/tasks/{task_id}/events") as sse:
            assert sse.status == 200
            frames = await sse_frames(sse)
        assert_run(frames)
        assert frames[-1]["seq"] == 22

        # Its callback, signed.
        got = await receiver.wait_for({task_id}, within=30)
        (delivery,) = got[task_id]
        assert receiver.verify(delivery)["status"] == "completed"

        # A turn on a conversation thread: its checkpoints are in the key-value bucket.
        chat = await create_agent(
            http,
            worker,
            {"type": "chat", "config": {"model": {"provider": "fake", "responses": ["Hi Ada."]}}},
        )
        thread = f"t-{uuid.uuid4().hex}"
        status, answer, _ = await call(
            http,
            "POST",
            f"{worker.url}/v1/agents/{chat}/invoke",
            json={"input": "I am Ada.", "thread_id": thread},
        )
        assert (status, answer["output"]) == (200, "Hi Ada."), answer
        status, state, _ = await call(http, "GET", f"{worker.url}/v1/threads/{thread}")
        assert status == 200
        said = [(m["type"], m["content"]) for m in state["values"]["messages"]]
        assert said == [("human", "I am Ada."), ("ai", "Hi Ada.")]
    finally:
        await receiver.stop()
        assert worker.stop() == 0
    assert "Traceback" not in worker.log_text()
    assert PASSWORD not in worker.log_text()


def start_refused(env: dict[str, str]) -> tuple[int, str]:
    """Run a worker that must not start: its exit code and what it wrote."""
    done = subprocess.run(
        [sys.executable, "-m", "worker"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stderr


def test_a_wrong_password_stops_start_up(secured: Secured, pki: Pki, tmp_path: Path) -> None:
    code, stderr = start_refused(worker_env(secured, pki, tmp_path, WORKER_NATS_PASSWORD=WRONG))
    assert code != 0
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("agentos-worker: NATS refused the connection: "), stderr
    assert "authorization violation" in last
    assert "WORKER_NATS_USER/WORKER_NATS_PASSWORD" in last
    assert "Traceback" not in stderr
    assert WRONG not in stderr


def test_an_untrusted_server_certificate_stops_start_up(
    secured: Secured, pki: Pki, tmp_path: Path
) -> None:
    # The worker trusts another CA than the one that signed the server's certificate.
    code, stderr = start_refused(
        worker_env(secured, pki, tmp_path, WORKER_NATS_TLS_CA=str(pki.rogue.ca_file))
    )
    assert code != 0
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("agentos-worker: NATS refused the connection: "), stderr
    assert "certificate verify failed" in last
    assert "WORKER_NATS_TLS_CA" in last
    assert "Traceback" not in stderr


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


async def connects(options_of: Settings) -> bool:
    broker = Broker(service="test")
    await asyncio.wait_for(broker.connect(connect_options(options_of), name="test"), 30)
    try:
        await broker.jetstream.account_info()
        return broker.connected
    finally:
        await broker.close()


async def test_an_nkey_seed_authenticates(secured: Secured, pki: Pki) -> None:
    tls = {
        "nats_tls_ca": pki.ca.ca_file,
        "nats_tls_cert": pki.client.cert,
        "nats_tls_key": pki.client.key,
    }
    assert await connects(settings(nats_url=secured.url, nats_nkey_seed=secured.nkey_seed, **tls))
    # Without a client certificate the server's `verify: true` refuses the handshake.
    bare = settings(
        nats_url=secured.url, nats_nkey_seed=secured.nkey_seed, nats_tls_ca=pki.ca.ca_file
    )
    with pytest.raises(NatsRefused, match="TLS handshake failed"):
        await connects(bare)


async def test_a_token_authenticates_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    server = NatsServer(config=f'authorization {{ token: "{TOKEN}" }}').start()
    try:
        assert await connects(settings(nats_url=server.url, nats_token=TOKEN))
        with pytest.raises(NatsRefused, match=r"authorization violation.*WORKER_NATS_TOKEN"):
            await connects(settings(nats_url=server.url, nats_token=WRONG))
    finally:
        server.close()


async def test_a_credentials_file_authenticates_in_operator_mode(tmp_path: Path) -> None:
    operator = Operator()
    server = NatsServer(config=operator.resolver_config()).start()
    try:
        creds = operator.user_creds(tmp_path / "worker.creds")
        assert await connects(settings(nats_url=server.url, nats_creds=creds))
        # A user of another operator's account: refused, and the message says by what.
        stranger = Operator().user_creds(tmp_path / "stranger.creds")
        with pytest.raises(NatsRefused, match=r"authorization violation.*WORKER_NATS_CREDS"):
            await connects(settings(nats_url=server.url, nats_creds=stranger))
    finally:
        server.close()


async def test_no_credentials_for_a_server_that_wants_some(secured: Secured, pki: Pki) -> None:
    with pytest.raises(NatsRefused, match="wants credentials and none are set"):
        await connects(
            settings(
                nats_url=secured.url,
                nats_tls_ca=pki.ca.ca_file,
                nats_tls_cert=pki.client.cert,
                nats_tls_key=pki.client.key,
            )
        )
