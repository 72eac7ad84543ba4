#!/usr/bin/env python3
"""A foreign SSH server for revtun's interop tests: AsyncSSH (PyPI), which still speaks the legacy
ciphers and MACs that OpenSSH dropped (blowfish-cbc, cast128-cbc, arcfour*, the -96 HMACs).
It accepts one user by password and lets the client open remote forwardings.

Usage: asyncssh_server.py USER PASSWORD HOST_KEY_FILE CIPHERS MACS   (comma-separated lists)
Prints "listening on PORT" once it accepts connections; runs until killed.
"""

import asyncio
import sys

import asyncssh

user, password, host_key, ciphers, macs = sys.argv[1:6]


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
        server_host_keys=[host_key],
        encryption_algs=ciphers.split(","),
        mac_algs=macs.split(","),
        compression_algs=["none"],
    )
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
