"""mTLS identities: the SPIFFE URI SAN or a DNS SAN names the caller, never the CN alone; a
certificate from another CA, or none, fails the TLS handshake (gRPC reports UNAVAILABLE)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import replace

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keysvc.access.identity import Authenticator, principal_from_certificate
from keysvc.server.app import create_server
from keysvc_client._pb.keysvc.v1 import crypto_pb2, crypto_pb2_grpc
from tests.service.access_env import make_env

NOW = datetime.datetime.now(datetime.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca, cn: str, sans: list[x509.GeneralName], server: bool = False):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem_key, cert.public_bytes(serialization.Encoding.PEM)


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def mtls(tmp_path):
    ca = _ca("keysvc test CA")
    server_key, server_cert = _leaf(
        ca,
        "keysvc",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        server=True,
    )
    env = make_env(tmp_path / "plain")
    credentials = grpc.ssl_server_credentials(
        [(server_key, server_cert)], root_certificates=_pem(ca[1]), require_client_auth=True
    )
    authenticator = Authenticator(str(env.tokens_path), allow_certificates=True)
    running = create_server(
        replace(env.service, authenticator=authenticator),
        "127.0.0.1:0",
        credentials=credentials,
        clock=env.clock,
    )
    yield ca, running.port
    running.stop(None)
    env.close()


def _encrypt(port: int, ca, key: bytes | None, cert: bytes | None):
    creds = grpc.ssl_channel_credentials(_pem(ca[1]), key, cert)
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        stub = crypto_pb2_grpc.CryptoStub(channel)
        request = crypto_pb2.EncryptRequest(
            key="customer-pii", items=[crypto_pb2.EncryptItem(plaintext=b"x")]
        )
        try:
            stub.Encrypt(request, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


def test_spiffe_id_and_dns_san_are_principals(mtls):
    ca, port = mtls
    key, cert = _leaf(ca, "ignored", [x509.UniformResourceIdentifier("spiffe://cc.example/ns/crm/sa/app")])
    assert _encrypt(port, ca, key, cert) is grpc.StatusCode.OK
    key, cert = _leaf(ca, "ignored", [x509.DNSName("recorder.cc.example")])
    assert _encrypt(port, ca, key, cert) is grpc.StatusCode.OK
    # a SPIFFE ID the policy does not know: authenticated, but no rule
    key, cert = _leaf(ca, "app", [x509.UniformResourceIdentifier("spiffe://cc.example/ns/ivr/sa/x")])
    assert _encrypt(port, ca, key, cert) is grpc.StatusCode.PERMISSION_DENIED


def test_common_name_alone_is_not_an_identity(mtls):
    ca, port = mtls
    key, cert = _leaf(ca, "app", [])
    assert _encrypt(port, ca, key, cert) is grpc.StatusCode.UNAUTHENTICATED


def test_certificate_from_another_ca_or_none_fails_the_handshake(mtls):
    ca, port = mtls
    other = _ca("another CA")
    key, cert = _leaf(other, "app", [x509.UniformResourceIdentifier("spiffe://cc.example/ns/crm/sa/app")])
    assert _encrypt(port, ca, key, cert) is grpc.StatusCode.UNAVAILABLE
    assert _encrypt(port, ca, None, None) is grpc.StatusCode.UNAVAILABLE


def test_principal_from_auth_context_rules():
    base = {"transport_security_type": [b"ssl"], "x509_pem_cert": [b"-----BEGIN"]}
    assert principal_from_certificate({**base, "peer_spiffe_id": [b"spiffe://td/x"]}) == "spiffe://td/x"
    assert (
        principal_from_certificate(
            {**base, "x509_subject_alternative_name": [b"a.example", b"spiffe://td/y"]}
        )
        == "spiffe://td/y"
    )
    assert (
        principal_from_certificate({**base, "x509_subject_alternative_name": [b"A.Example"]})
        == "dns:a.example"
    )
    assert principal_from_certificate({**base, "x509_subject_alternative_name": [b"10.0.0.1"]}) is None
    assert principal_from_certificate({**base, "x509_common_name": [b"app"]}) is None
    assert principal_from_certificate({"transport_security_type": [b"ssl"]}) is None


def test_server_certificate_reloads_without_restart(tmp_path):
    from keysvc.server.access_app import CertificateFiles

    client_ca, old_ca, new_ca = _ca("client CA"), _ca("old server CA"), _ca("new server CA")
    sans = [x509.DNSName("localhost")]
    cert_file, key_file, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    key, cert = _leaf(old_ca, "keysvc", sans, server=True)
    key_file.write_bytes(key)
    cert_file.write_bytes(cert)
    ca_file.write_bytes(_pem(client_ca[1]))
    files = CertificateFiles(str(cert_file), str(key_file), str(ca_file), check_seconds=0.0)
    credentials = grpc.dynamic_ssl_server_credentials(files.initial, files.fetch, True)
    env = make_env(tmp_path / "plain")
    running = create_server(
        replace(env.service, authenticator=Authenticator(str(env.tokens_path), allow_certificates=True)),
        "127.0.0.1:0",
        credentials=credentials,
        clock=env.clock,
    )
    try:
        ckey, ccert = _leaf(
            client_ca, "x", [x509.UniformResourceIdentifier("spiffe://cc.example/ns/crm/sa/app")]
        )
        assert _encrypt(running.port, old_ca, ckey, ccert) is grpc.StatusCode.OK
        assert _encrypt(running.port, new_ca, ckey, ccert) is grpc.StatusCode.UNAVAILABLE
        key, cert = _leaf(new_ca, "keysvc", sans, server=True)
        key_file.write_bytes(key)
        cert_file.write_bytes(cert)
        assert _encrypt(running.port, new_ca, ckey, ccert) is grpc.StatusCode.OK
    finally:
        running.stop(None)
        env.close()
