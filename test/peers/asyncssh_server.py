#!/usr/bin/env python3
"""A foreign SSH server for revtun's interop tests: AsyncSSH (PyPI), which still speaks the legacy
ciphers and MACs that OpenSSH dropped (blowfish-cbc, cast128-cbc, arcfour*, the -96 HMACs), and
serves X.509 host certificates (RFC 6187, with pyOpenSSL installed).
It accepts one user by password and lets the client open remote forwardings.

Usage: asyncssh_server.py USER PASSWORD HOST_KEYS CIPHERS MACS   (comma-separated lists)
HOST_KEYS: KEY_FILE or KEY_FILE=CERT_FILE entries; a CERT_FILE of PEM certificates (the
server's own first, then the CAs above it) makes the key an x509v3-* host key as well.
Prints "listening on PORT" once it accepts connections; runs until killed.
"""

import asyncio
import sys

import asyncssh

user, password, host_keys, ciphers, macs = sys.argv[1:6]
# Optional: the compression algorithms offered (default none).
compression = sys.argv[6] if len(sys.argv) > 6 else "none"


def host_key_entry(entry):
    key, _, cert = entry.partition("=")
    return (key, cert) if cert else key


class Server(asyncssh.SSHServer):
    def begin_auth(self, username):
        return True

    def password_auth_supported(self):
        return True

    def validate_password(self, username, supplied):
        return username == user and supplied == password

    def server_requested(self, listen_host, listen_port):
        # Only loopback listeners: this server exists for tests on 127.0.0.1.
        return listen_host in ("127.0.0.1", "localhost", "")


async def main():
    server = await asyncssh.create_server(
        Server,
        "127.0.0.1",
        0,
        server_host_keys=[host_key_entry(e) for e in host_keys.split(",")],
        encryption_algs=ciphers.split(","),
        mac_algs=macs.split(","),
        compression_algs=compression.split(","),
    )
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
