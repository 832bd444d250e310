"""TlsFileServer: one file over https on 127.0.0.1, with a certificate for a name of the test's choosing.

with TlsFileServer("files.example", b"meow") as server:
    ... fetch f"https://files.example:{server.port}/" trusting server.ca_context() ...
    server.sni_names  # the names clients asked for in their TLS hello
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class TlsFileServer:
    def __init__(self, certificate_name: str, body: bytes) -> None:
        self.certificate_name = certificate_name
        self.body = body
        self.sni_names: list[str | None] = []
        self.cert_pem, key_pem = _self_signed(certificate_name)
        self._dir = tempfile.TemporaryDirectory()
        cert_file, key_file = Path(self._dir.name, "cert.pem"), Path(self._dir.name, "key.pem")
        cert_file.write_bytes(self.cert_pem)
        key_file.write_bytes(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = lambda _sock, server_name, _ctx: self.sni_names.append(server_name)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def ca_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's certificate."""
        context = ssl.create_default_context(cadata=self.cert_pem.decode())
        return context

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._dir.cleanup()
