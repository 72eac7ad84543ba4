#!/usr/bin/env python3
"""Regenerates packets.json: known-answer SSH packets for every packet cipher and MAC that can
be computed without revtun's own code. Each case is sealed here with pyca/cryptography (OpenSSL
underneath, including its "decrepit" Blowfish, CAST5, ARC4 and 3DES) and Python's hmac/hashlib,
following RFC 4253 §6 framing, RFC 4344 (CTR), RFC 4345 (arcfour128/256 discard 1536 bytes),
RFC 5647 / OpenSSH (GCM nonce counter), OpenSSH PROTOCOL.chacha20poly1305 and OpenSSH's EtM MACs.
UMAC's known answers are RFC 4418's (crates/revtun-core/tests/umac.rs); its SSH framing is
checked against OpenSSH's sshd in the integration suite.

Run: python3 test/vectors/generate.py > test/vectors/packets.json  (output is seeded: stable)
"""

import hashlib
import hmac
import json
import random
import struct

from cryptography.hazmat.decrepit.ciphers import algorithms as old
from cryptography.hazmat.primitives import poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

rng = random.Random(4253)


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


CIPHERS = {
    # name: (key length, iv length, block size, factory(key, iv) -> encryptor or None for AEAD)
    "aes128-ctr": (16, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CTR(iv)).encryptor()),
    "aes192-ctr": (24, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CTR(iv)).encryptor()),
    "aes256-ctr": (32, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CTR(iv)).encryptor()),
    "aes128-cbc": (16, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()),
    "aes192-cbc": (24, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()),
    "aes256-cbc": (32, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()),
    "rijndael-cbc@lysator.liu.se": (32, 16, 16, lambda k, iv: Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()),
    "3des-ctr": (24, 8, 8, lambda k, iv: EcbCounter(old.TripleDES(k), iv)),
    "3des-cbc": (24, 8, 8, lambda k, iv: Cipher(old.TripleDES(k), modes.CBC(iv)).encryptor()),
    "blowfish-cbc": (16, 8, 8, lambda k, iv: Cipher(old.Blowfish(k), modes.CBC(iv)).encryptor()),
    "cast128-cbc": (16, 8, 8, lambda k, iv: Cipher(old.CAST5(k), modes.CBC(iv)).encryptor()),
    "arcfour": (16, 0, 8, lambda k, iv: Cipher(old.ARC4(k), mode=None).encryptor()),
    "arcfour128": (16, 0, 8, lambda k, iv: discard(Cipher(old.ARC4(k), mode=None).encryptor())),
    "arcfour256": (32, 0, 8, lambda k, iv: discard(Cipher(old.ARC4(k), mode=None).encryptor())),
    "aes128-gcm@openssh.com": (16, 12, 16, None),
    "aes256-gcm@openssh.com": (32, 12, 16, None),
    "chacha20-poly1305@openssh.com": (64, 0, 8, None),
}

MACS = {
    # name: (hash, key length, tag length, etm)
    "hmac-sha2-256": ("sha256", 32, 32, False),
    "hmac-sha2-512": ("sha512", 64, 64, False),
    "hmac-sha1": ("sha1", 20, 20, False),
    "hmac-md5": ("md5", 16, 16, False),
    "hmac-ripemd160": ("ripemd160", 20, 20, False),
    "hmac-ripemd160@openssh.com": ("ripemd160", 20, 20, False),
    "hmac-sha1-96": ("sha1", 20, 12, False),
    "hmac-md5-96": ("md5", 16, 12, False),
    "hmac-sha2-256-96": ("sha256", 32, 12, False),
    "hmac-sha2-512-96": ("sha512", 64, 12, False),
    "hmac-ripemd160-96": ("ripemd160", 20, 12, False),
    "hmac-sha2-256-etm@openssh.com": ("sha256", 32, 32, True),
    "hmac-sha2-512-etm@openssh.com": ("sha512", 64, 64, True),
    "hmac-sha1-etm@openssh.com": ("sha1", 20, 20, True),
    "hmac-md5-etm@openssh.com": ("md5", 16, 16, True),
    "hmac-ripemd160-etm@openssh.com": ("ripemd160", 20, 20, True),
    "hmac-sha1-96-etm@openssh.com": ("sha1", 20, 12, True),
    "hmac-md5-96-etm@openssh.com": ("md5", 16, 12, True),
    "hmac-sha2-256-96-etm@openssh.com": ("sha256", 32, 12, True),
    "hmac-sha2-512-96-etm@openssh.com": ("sha512", 64, 12, True),
}


class EcbCounter:
    """CTR mode from ECB (OpenSSL has no 3DES-CTR): keystream = E(counter), 64-bit big-endian."""

    def __init__(self, algorithm, iv):
        self.ecb = Cipher(algorithm, modes.ECB()).encryptor()
        self.counter = int.from_bytes(iv, "big")
        self.size = len(iv)

    def update(self, data):
        out = bytearray()
        for i in range(0, len(data), self.size):
            stream = self.ecb.update(self.counter.to_bytes(self.size, "big"))
            self.counter = (self.counter + 1) % (1 << (8 * self.size))
            out += bytes(a ^ b for a, b in zip(data[i : i + self.size], stream))
        return bytes(out)


def discard(encryptor):
    encryptor.update(bytes(1536))
    return encryptor


def plain_packet(block, length_outside):
    """uint32 length, padding length, payload, random padding (RFC 4253 §6)."""
    payload = rand(rng.randrange(0, 300))
    unpadded = 1 + len(payload) + (0 if length_outside else 4)
    pad = block - unpadded % block
    if pad < 4:
        pad += block
    body = bytes([pad]) + payload + rand(pad)
    return struct.pack(">I", len(body)) + body


def chacha_stream(key, seq, counter, data):
    nonce = struct.pack("<Q", counter) + struct.pack(">Q", seq)
    return Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(data)


def case(cipher, mac):
    key_len, iv_len, block, factory = CIPHERS[cipher]
    key, iv = rand(key_len), rand(iv_len)
    aead = factory is None
    hash_name, mac_key_len, tag_len, etm = MACS[mac] if mac else (None, 0, 16, True)
    mac_key = rand(mac_key_len)
    encryptor = None if aead else factory(key, iv)
    first = rng.choice([0, 3, 0xFFFFFFFE])  # 0xFFFFFFFE: the sequence number wraps within the case
    packets = []
    nonce = bytearray(iv)
    for i in range(3):
        seq = (first + i) & 0xFFFFFFFF
        plain = plain_packet(block, aead or etm)
        if cipher.startswith("chacha20"):
            main, header = key[:32], key[32:]
            sealed = chacha_stream(header, seq, 0, plain[:4]) + chacha_stream(main, seq, 1, plain[4:])
            tag = poly1305.Poly1305.generate_tag(chacha_stream(main, seq, 0, bytes(32)), sealed)
            sealed += tag
        elif aead:
            out = AESGCM(key).encrypt(bytes(nonce), plain[4:], plain[:4])
            sealed = plain[:4] + out
            counter = (int.from_bytes(nonce[4:], "big") + 1) % (1 << 64)
            nonce[4:] = counter.to_bytes(8, "big")
        elif etm:
            encrypted = plain[:4] + encryptor.update(plain[4:])
            tag = hmac.new(mac_key, struct.pack(">I", seq) + encrypted, hash_name).digest()[:tag_len]
            sealed = encrypted + tag
        else:
            tag = hmac.new(mac_key, struct.pack(">I", seq) + plain, hash_name).digest()[:tag_len]
            sealed = encryptor.update(plain) + tag
        packets.append({"sequence": seq, "plain": plain.hex(), "sealed": sealed.hex()})
    return {"cipher": cipher, "mac": mac, "key": key.hex(), "iv": iv.hex(), "macKey": mac_key.hex(), "packets": packets}


cases = []
for cipher, spec in CIPHERS.items():
    if spec[3] is None:
        cases.append(case(cipher, None))
    else:
        cases.append(case(cipher, "hmac-sha2-256"))
        cases.append(case(cipher, "hmac-sha1-etm@openssh.com"))
for mac in MACS:
    cases.append(case("aes128-ctr", mac))
print(json.dumps({"generatedBy": "test/vectors/generate.py", "cases": cases}, indent=1))
