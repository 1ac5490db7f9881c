"""``connect_options``: the settings' credentials and TLS, checked at start, secrets kept."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from tests.broker.operator_mode import Operator
from tests.broker.pki import Authority
from worker.broker.connection import connect_options
from worker.config import ConfigError, Settings

URL = "tls://nats-0.example:4222, tls://nats-1.example:4222"
PASSWORD = "hunter2"  # noqa: S105 - a test value
TOKEN = "s3cret"  # noqa: S105 - a test value


def options(**values: Any) -> Any:
    return connect_options(Settings.model_validate({"nats_url": URL, **values}))


def test_the_embedded_server_gets_no_credentials() -> None:
    embedded = connect_options(Settings.model_validate({}))
    assert embedded.connect_kwargs() == {"servers": []}


def test_a_password_and_a_token_reach_nats_py_but_no_repr() -> None:
    with_password = options(nats_user="worker", nats_password=PASSWORD)
    assert with_password.connect_kwargs() == {
        "servers": ["tls://nats-0.example:4222", "tls://nats-1.example:4222"],
        "user": "worker",
        "password": PASSWORD,
    }
    assert PASSWORD not in repr(with_password)
    with_token = options(nats_token=TOKEN)
    assert with_token.connect_kwargs()["token"] == TOKEN
    assert TOKEN not in repr(with_token)


def test_tls_context_trusts_the_given_ca_only(tmp_path: Path) -> None:
    ca = Authority("ca", tmp_path)
    client = ca.issue("worker")
    got = options(
        nats_tls_ca=ca.ca_file,
        nats_tls_cert=client.cert,
        nats_tls_key=client.key,
        nats_tls_server_name="nats.internal",
    ).connect_kwargs()
    context = got["tls"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]
    assert got["tls_hostname"] == "nats.internal"
    assert "tls" not in options().connect_kwargs()  # no TLS setting: nats-py's default


def test_credential_files_are_checked_at_start(tmp_path: Path) -> None:
    creds = Operator().user_creds(tmp_path / "worker.creds")
    assert options(nats_creds=creds).connect_kwargs()["user_credentials"] == str(creds)
    with pytest.raises(ConfigError, match="WORKER_NATS_CREDS: cannot read"):
        options(nats_creds=tmp_path / "missing.creds")
    (tmp_path / "empty.creds").write_text("")
    # (nats-py would loop forever looking for the JWT in it)
    with pytest.raises(ConfigError, match=r"WORKER_NATS_CREDS: .* is not a NATS credentials file"):
        options(nats_creds=tmp_path / "empty.creds")
    (tmp_path / "bad.nk").write_text("SUnot-a-seed\n")
    with pytest.raises(ConfigError, match=r"WORKER_NATS_NKEY_SEED: .* does not hold an nkey seed"):
        options(nats_nkey_seed=tmp_path / "bad.nk")


def test_tls_files_are_checked_at_start(tmp_path: Path) -> None:
    ca = Authority("ca", tmp_path)
    client = ca.issue("worker")
    other = ca.issue("other")
    (tmp_path / "not.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="WORKER_NATS_TLS_CA: cannot load"):
        options(nats_tls_ca=tmp_path / "not.pem")
    with pytest.raises(ConfigError, match="WORKER_NATS_TLS_CA: cannot load"):
        options(nats_tls_ca=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="WORKER_NATS_TLS_CERT / WORKER_NATS_TLS_KEY"):
        options(nats_tls_ca=ca.ca_file, nats_tls_cert=client.cert, nats_tls_key=other.key)
