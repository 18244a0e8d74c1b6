"""HTTPS: `fastingest serve --ssl-certfile/--ssl-keyfile` with a self-signed certificate
made by openssl as the README makes it, checked by a real TLS client (httpx over the ssl
module, verifying the certificate), with one worker and with several; a key's password
from a file or the environment; unusable TLS files refused before starting."""
from __future__ import annotations

import os
import shutil
import sqlite3
import ssl
import subprocess
import sys

import httpx
import pytest

from servers import ROOT, Serve

AUTH = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
SUBJECT = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]


def openssl(*args: str, cwd) -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is missing (.ci/run installs it)")
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """cert.pem + key.pem (plain, as in the README), enc-cert.pem + enc-key.pem (the key
    encrypted with the password in password.txt)."""
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *SUBJECT,
            "-keyout", "key.pem", "-out", "cert.pem", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-days", "2", *SUBJECT, "-passout",
            "pass:correct horse", "-keyout", "enc-key.pem", "-out", "enc-cert.pem", cwd=d)
    (d / "password.txt").write_text("correct horse\n")
    return d


def client(server, cafile) -> httpx.Client:
    """A verifying TLS client that trusts only our self-signed certificate."""
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(cafile)))


def count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_https_with_a_self_signed_certificate(certs, tmp_path, workers):
    db = tmp_path / "tls.db"
    args = ["--token", "app=s3cret", "--store", f"sqlite:{db}", "--workers", str(workers),
            "--ssl-certfile", str(certs / "cert.pem"), "--ssl-keyfile", str(certs / "key.pem"),
            "--log-level", "warning"]
    with Serve(args, cwd=tmp_path) as server:
        assert server.url.startswith("https://")
        for i in range(6):   # fresh connections: with workers, spread over them
            with client(server, certs / "cert.pem") as c:
                r = c.post("/", content=b'{"n": %d}' % i, headers=AUTH)
                assert r.status_code == 202
                assert r.extensions["http_version"] == b"HTTP/1.1"
                assert c.get("/metrics").status_code == 200
        with pytest.raises(httpx.ConnectError):   # a client that does not trust it
            httpx.post(server.url + "/", content=b"{}", headers=AUTH)
        with pytest.raises(httpx.HTTPError):      # plain HTTP on the TLS port
            httpx.post(server.url.replace("https", "http") + "/", content=b"{}", headers=AUTH,
                       timeout=10)
    assert count(db) == 6


def test_encrypted_key_password_from_a_file_or_the_environment(certs, tmp_path):
    tls = ["--ssl-certfile", str(certs / "enc-cert.pem"), "--ssl-keyfile",
           str(certs / "enc-key.pem")]
    base = ["--token", "app=s3cret", "--store", f"sqlite:{tmp_path / 'p.db'}",
            "--log-level", "warning"]
    with Serve(base + tls + ["--ssl-keyfile-password-file", str(certs / "password.txt")],
               cwd=tmp_path) as server, client(server, certs / "enc-cert.pem") as c:
        assert c.post("/", content=b"{}", headers=AUTH).status_code == 202
    env = dict(os.environ, FASTINGEST_SSL_KEYFILE_PASSWORD="correct horse")
    with Serve(base + tls + ["--workers", "2"], cwd=tmp_path, env=env) as server, \
            client(server, certs / "enc-cert.pem") as c:
        assert c.post("/", content=b"{}", headers=AUTH).status_code == 202


def serve_fails(args, tmp_path, env=None):
    proc = subprocess.run([sys.executable, "-m", "fastingest", "serve", "--port", "0",
                           "--token", "app=s3cret", "--store", f"sqlite:{tmp_path / 'f.db'}",
                           *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": ROOT, **(env or {})})
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stderr


def test_unusable_tls_files_are_exit_status_2(certs, tmp_path):
    tls = ["--ssl-certfile", str(certs / "enc-cert.pem"), "--ssl-keyfile",
           str(certs / "enc-key.pem")]
    status, err = serve_fails(tls, tmp_path, {"FASTINGEST_SSL_KEYFILE_PASSWORD": "wrong"})
    assert status == 2 and "cannot use --ssl-certfile" in err and "password" in err
    assert "wrong" not in err.replace("wrong password", "")   # the password is not echoed
    status, err = serve_fails(["--ssl-certfile", str(tmp_path / "missing.pem")], tmp_path)
    assert status == 2 and "missing.pem" in err
    status, err = serve_fails(["--ssl-keyfile", str(certs / "key.pem")], tmp_path)
    assert status == 2 and "needs --ssl-certfile" in err
    status, err = serve_fails([*tls, "--ssl-keyfile-password-file", str(tmp_path / "none")],
                              tmp_path)
    assert status == 2 and "--ssl-keyfile-password-file" in err
