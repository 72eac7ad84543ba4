import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { PacketTransport } from '../../../ts/protocol/transport.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import type { DirectionKeys } from '../../../ts/crypto/provider.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { loadCryptoProvider } from '../../../ts/crypto/select.js';

const provider = new NodeCryptoProvider();
const random = (n: number) => randomBytes(n);

function keysFor(cipher: string, mac: string | null): DirectionKeys {
  const c = provider.ciphers.get(cipher)!;
  const m = mac ? provider.macs.get(mac)! : null;
  return { cipher, mac, key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m?.keyLength ?? 0) };
}

function pair(cipher: string | null, mac: string | null) {
  const sender = new PacketTransport(random, () => true);
  const receiver = new PacketTransport(random, () => true);
  if (cipher) {
    const keys = keysFor(cipher, mac);
    sender.setSealer(provider.createSealer(keys));
    receiver.setOpener(provider.createOpener(keys));
  }
  return { sender, receiver };
}

const SUITES: [string | null, string | null][] = [
  [null, null],
  ['aes128-gcm@openssh.com', null],
  ['aes256-gcm@openssh.com', null],
  ['chacha20-poly1305@openssh.com', null],
  ...['aes128-ctr', 'aes192-ctr', 'aes256-ctr'].flatMap((c) =>
    ['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'].map((m) => [c, m] as [string, string]),
  ),
];

describe('packet transport', () => {
  it.each(SUITES)('%s / %s: packets round-trip, even fed one byte at a time', (cipher, mac) => {
    const { sender, receiver } = pair(cipher, mac);
    const payloads = [0, 1, 15, 16, 17, 255, 1000, 32768].map((n) => {
      const p = randomBytes(n + 1);
      p[0] = 94;
      return p;
    });
    const wire = Buffer.concat(payloads.map((p) => sender.framePayload(p)));
    // Every byte boundary: feed one byte, try to read.
    const got: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i++) {
      receiver.receive(wire.subarray(i, i + 1));
      for (let p = receiver.readPacket(); p; p = receiver.readPacket()) got.push(p);
    }
    expect(got.map((p) => Buffer.from(p).toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
    expect(receiver.receiveSequence).toBe(payloads.length);
  });

  it.each(SUITES.filter(([c]) => c !== null))('%s / %s: every split point of a two-packet stream decodes the same', (cipher, mac) => {
    const { sender } = pair(cipher, mac);
    const keys = keysFor(cipher!, mac);
    const a = Buffer.from([94, 1, 2, 3]);
    const b = Buffer.from([96, 9, 9]);
    sender.setSealer(provider.createSealer(keys));
    const wire = Buffer.concat([sender.framePayload(a), sender.framePayload(b)]);
    for (let split = 0; split <= wire.length; split++) {
      const receiver = new PacketTransport(random, () => true);
      receiver.setOpener(provider.createOpener(keys));
      receiver.receive(wire.subarray(0, split));
      const got: string[] = [];
      for (let p = receiver.readPacket(); p; p = receiver.readPacket()) got.push(Buffer.from(p).toString('hex'));
      receiver.receive(wire.subarray(split));
      for (let p = receiver.readPacket(); p; p = receiver.readPacket()) got.push(Buffer.from(p).toString('hex'));
      expect(got).toEqual([a.toString('hex'), b.toString('hex')]);
    }
  });

  // Owned input: packets lying whole inside a received chunk are decrypted in that chunk.
  // CBC with MAC-then-encrypt is included because its head is decrypted separately first.
  const OWNED: [string, string | null][] = [...(SUITES.filter(([c]) => c !== null) as [string, string | null][]), ['aes128-cbc', 'hmac-sha2-256'], ['aes256-cbc', 'hmac-sha1-etm@openssh.com']];
  it.each(OWNED)('%s / %s: with owned input, every split of a three-packet stream decodes the same', (cipher, mac) => {
    const keys = keysFor(cipher, mac);
    const sender = new PacketTransport(random, () => true);
    sender.setSealer(provider.createSealer(keys));
    const payloads = [Buffer.from([94, 1, 2, 3]), Buffer.from(randomBytes(300)), Buffer.from([96, 9, 9])];
    payloads[1]![0] = 94;
    const wire = Buffer.concat(payloads.map((p) => sender.framePayload(p)));
    for (let split = 0; split <= wire.length; split++) {
      const receiver = new PacketTransport(random, () => true, undefined, true);
      receiver.setOpener(provider.createOpener(keys));
      const got: string[] = [];
      for (const part of [wire.subarray(0, split), wire.subarray(split)]) {
        receiver.receive(Buffer.from(part)); // a fresh chunk, as a socket delivers
        for (let p = receiver.readPacket(); p; p = receiver.readPacket()) got.push(Buffer.from(p).toString('hex'));
      }
      expect(got, `split at ${split}`).toEqual(payloads.map((p) => p.toString('hex')));
    }
  });

  it('with owned input, a packet inside one chunk is decrypted there, without a copy', () => {
    const keys = keysFor('aes128-gcm@openssh.com', null);
    const sender = new PacketTransport(random, () => true);
    sender.setSealer(provider.createSealer(keys));
    const chunk = Buffer.from(sender.framePayload(Buffer.from([94, 7, 7, 7])));
    const owned = new PacketTransport(random, () => true, undefined, true);
    owned.setOpener(provider.createOpener(keys));
    owned.receive(chunk);
    expect(owned.readPacket()!.buffer).toBe(chunk.buffer);
    // Without ownership the caller's bytes are left alone.
    const otherKeys = keysFor('aes128-gcm@openssh.com', null);
    const other = new PacketTransport(random, () => true);
    other.setSealer(provider.createSealer(otherKeys));
    const copy = Buffer.from(other.framePayload(Buffer.from([94, 8])));
    const before = Buffer.from(copy);
    const borrowed = new PacketTransport(random, () => true);
    borrowed.setOpener(provider.createOpener(otherKeys));
    borrowed.receive(copy);
    expect(Buffer.from(borrowed.readPacket()!).toString('hex')).toBe('5e08');
    expect(copy.equals(before)).toBe(true);
  });

  it.each(SUITES.filter(([c]) => c !== null))('%s / %s: a flipped bit fails with 1015', (cipher, mac) => {
    const { sender, receiver } = pair(cipher, mac);
    const wire = Buffer.from(sender.framePayload(randomBytes(100)));
    wire[wire.length - 20]! ^= 0x01;
    receiver.receive(wire);
    let error: unknown;
    try {
      receiver.readPacket();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1015);
  });

  it('rejects a length field over 256 KiB and under 5', () => {
    for (const length of [300 * 1024, 2]) {
      const receiver = new PacketTransport(random, () => true);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(length, 0);
      receiver.receive(head);
      expect(() => receiver.readPacket()).toThrow(/bad packet length/);
    }
  });

  it('rejects padding shorter than 4 bytes and misaligned packets', () => {
    const short = Buffer.from([0, 0, 0, 12, 3, 94, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0]);
    const r1 = new PacketTransport(random, () => true);
    r1.receive(short);
    expect(() => r1.readPacket()).toThrow(/bad padding/);
    const misaligned = Buffer.from([0, 0, 0, 10, 4, 94, 1, 2, 3, 4, 5, 6, 7, 8]);
    const r2 = new PacketTransport(random, () => true);
    r2.receive(misaligned);
    expect(() => r2.readPacket()).toThrow(/bad padding/);
  });
});

describe('version exchange', () => {
  it('skips banner lines, then returns the version; bytes after it stay for packets', () => {
    const t = new PacketTransport(random, (v) => v.startsWith('SSH-2.0-'));
    t.receive(Buffer.from('hello there\r\nsecond line\nSSH-2.0-Test_1.0\r\n\x00\x00\x00\x0c'));
    const v = t.readVersion();
    expect(v).toEqual({ serverVersion: 'SSH-2.0-Test_1.0', preVersionLines: ['hello there', 'second line'] });
  });

  it('waits for the rest of a split version line', () => {
    const t = new PacketTransport(random, () => true);
    t.receive(Buffer.from('SSH-2.0-Sp'));
    expect(t.readVersion()).toBeNull();
    t.receive(Buffer.from('lit\r\n'));
    expect(t.readVersion()?.serverVersion).toBe('SSH-2.0-Split');
  });

  it('refuses versions the pattern rejects, with 1002', () => {
    const t = new PacketTransport(random, (v) => v.startsWith('SSH-2.0-'));
    t.receive(Buffer.from('SSH-1.5-Old\r\n'));
    expect(() => t.readVersion()).toThrow(expect.objectContaining({ code: 1002 }));
  });

  it('refuses an overlong line and endless banners', () => {
    const long = new PacketTransport(random, () => true);
    long.receive(Buffer.from('x'.repeat(400)));
    expect(() => long.readVersion()).toThrow(expect.objectContaining({ code: 1002 }));
    const chatty = new PacketTransport(random, () => true);
    chatty.receive(Buffer.from('banner line\n'.repeat(2000)));
    expect(() => chatty.readVersion()).toThrow(/too much text/);
  });
});

describe('outgoing bursts', () => {
  // Packets are framed back to back and sealed a burst at a time; with the native and WASM
  // providers through one sealBatch call, with node:crypto one seal per packet.
  const providers = [['node', provider] as const, ...(['native', 'wasm'] as const).map((name) => [name, loadCryptoProvider(name)] as const)];

  it.each(providers.flatMap(([name, p]) => ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-cbc'].map((c) => [name, c, p] as const)))(
    '%s, %s: a drained burst opens packet by packet, in order',
    (name, cipher, p) => {
      const info = p.ciphers.get(cipher)!;
      const mac = info.aead ? null : 'hmac-sha2-256';
      const keys: DirectionKeys = { cipher, mac, key: randomBytes(info.keyLength), iv: randomBytes(info.ivLength), macKey: randomBytes(mac ? 32 : 0) };
      const sender = new PacketTransport(random, () => true);
      const sealer = p.createSealer(keys);
      expect(typeof sealer.sealBatch).toBe(name === 'node' ? 'undefined' : 'function');
      sender.setSealer(sealer);
      sender.sendSequence = 0xfffffffe; // the burst crosses the wrap of the sequence number
      const payloads = [5, 1000, 33000, 0, 77].map((n) => Buffer.concat([Buffer.from([94]), randomBytes(n)]));
      for (const payload of payloads) sender.queuePayload(payload);
      const out = sender.drain()!;
      expect(out).toHaveLength(1);
      expect(sender.drain()).toBeNull();
      const receiver = new PacketTransport(random, () => true);
      receiver.setOpener(p.createOpener(keys));
      receiver.receiveSequence = 0xfffffffe;
      receiver.receive(out[0]!);
      const got: string[] = [];
      for (let packet = receiver.readPacket(); packet; packet = receiver.readPacket()) got.push(Buffer.from(packet).toString('hex'));
      expect(got).toEqual(payloads.map((x) => x.toString('hex')));
    },
  );

  it('packets queued before new keys are sealed with the old ones', () => {
    const oldKeys = keysFor('aes128-gcm@openssh.com', null);
    const newKeys = keysFor('aes256-gcm@openssh.com', null);
    const sender = new PacketTransport(random, () => true);
    sender.setSealer(provider.createSealer(oldKeys));
    sender.queuePayload(Buffer.from([94, 1]));
    sender.setSealer(provider.createSealer(newKeys));
    sender.queuePayload(Buffer.from([94, 2]));
    const [first, second] = sender.drain()!;
    const receiver = new PacketTransport(random, () => true);
    receiver.setOpener(provider.createOpener(oldKeys));
    receiver.receive(Buffer.from(first!));
    expect(Buffer.from(receiver.readPacket()!).toString('hex')).toBe('5e01');
    receiver.setOpener(provider.createOpener(newKeys));
    receiver.receive(Buffer.from(second!));
    expect(Buffer.from(receiver.readPacket()!).toString('hex')).toBe('5e02');
  });

  it('a burst that outgrows the shared buffer continues in a new one, in order', () => {
    const sender = new PacketTransport(random, () => true);
    const payloads = Array.from({ length: 16 }, (_, i) => Buffer.concat([Buffer.from([94, i]), randomBytes(40 * 1024)]));
    for (const payload of payloads) sender.queuePayload(payload);
    const out = sender.drain()!;
    expect(out.length).toBe(2); // 16 x 40 KiB does not fit in one 512 KiB buffer
    const receiver = new PacketTransport(random, () => true);
    receiver.receive(Buffer.concat(out));
    const got: string[] = [];
    for (let packet = receiver.readPacket(); packet; packet = receiver.readPacket()) got.push(Buffer.from(packet).toString('hex'));
    expect(got).toEqual(payloads.map((x) => x.toString('hex')));
  });
});

describe('lent input (a reused read buffer)', () => {
  const keys = keysFor('aes128-gcm@openssh.com', null);
  /** The sealed packets for `payloads`, each on its own. */
  const sealed = (payloads: Buffer[]) => {
    const sender = new PacketTransport(random, () => true);
    sender.setSealer(provider.createSealer(keys));
    return payloads.map((p) => Buffer.from(sender.framePayload(p)));
  };
  const receiverCountingCopies = () => {
    const counter = { allocations: 0 };
    const allocate = (n: number) => {
      counter.allocations++;
      return new Uint8Array(n);
    };
    const receiver = new PacketTransport(random, () => true, allocate, true);
    receiver.setOpener(provider.createOpener(keys));
    return { receiver, counter };
  };
  const payload = (id: number, n: number) => Buffer.concat([Buffer.from([94, id]), randomBytes(n)]);
  const hex = (p: Uint8Array | null) => (p ? Buffer.from(p).toString('hex') : null);

  it('a packet split across two reads that land one after the other in one buffer is opened there, not copied', () => {
    const payloads = [payload(1, 5000), payload(2, 7000)];
    const packets = sealed(payloads);
    const lent = Buffer.alloc(packets[0]!.length + packets[1]!.length + 100);
    Buffer.concat(packets).copy(lent);
    const { receiver, counter } = receiverCountingCopies();
    const split = packets[0]!.length + 1000; // inside the second packet
    receiver.receive(lent.subarray(0, split));
    expect(hex(receiver.readPacket())).toBe(hex(payloads[0]!));
    expect(receiver.readPacket()).toBeNull();
    expect(receiver.inputBacklog).toBe(1000);
    receiver.receive(lent.subarray(split, packets[0]!.length + packets[1]!.length)); // the next read, right after
    const second = receiver.readPacket()!;
    expect(hex(second)).toBe(hex(payloads[1]!));
    expect(second.buffer).toBe(lent.buffer);
    expect(counter.allocations).toBe(0);
    expect(receiver.inputBacklog).toBe(0);
  });

  it('moveInput carries a partial packet to the start of a buffer (the same one or a new one) and reading goes on', () => {
    for (const sameBuffer of [true, false]) {
      const payloads = [payload(1, 3000), payload(2, 9000), payload(3, 10)];
      const packets = sealed(payloads);
      const wire = Buffer.concat(packets);
      const lent = Buffer.alloc(wire.length);
      wire.copy(lent);
      const { receiver, counter } = receiverCountingCopies();
      const split = packets[0]!.length + 4000;
      receiver.receive(lent.subarray(0, split));
      expect(hex(receiver.readPacket())).toBe(hex(payloads[0]!));
      expect(receiver.readPacket()).toBeNull();
      const target = sameBuffer ? lent : Buffer.alloc(wire.length);
      receiver.moveInput(target);
      expect(receiver.inputBacklog).toBe(4000);
      if (sameBuffer) lent.fill(0xee, 4000); // the old place is reused: what was there is gone
      // The rest arrives right after the moved bytes.
      wire.copy(target, 4000, split);
      receiver.receive(target.subarray(4000, 4000 + wire.length - split));
      expect(hex(receiver.readPacket())).toBe(hex(payloads[1]!));
      expect(hex(receiver.readPacket())).toBe(hex(payloads[2]!));
      expect(counter.allocations).toBe(0);
    }
  });

  it('moveInput gathers bytes queued from separate chunks', () => {
    const payloads = [payload(4, 2000)];
    const [packet] = sealed(payloads);
    const { receiver } = receiverCountingCopies();
    receiver.receive(Buffer.from(packet!.subarray(0, 100)));
    receiver.receive(Buffer.from(packet!.subarray(100, 700)));
    const target = Buffer.alloc(4096);
    receiver.moveInput(target);
    packet!.copy(target, 700, 700);
    receiver.receive(target.subarray(700, packet!.length));
    expect(hex(receiver.readPacket())).toBe(hex(payloads[0]!));
    expect(() => receiver.moveInput(Buffer.alloc(0))).not.toThrow(); // nothing queued
  });

  it('releaseOutput lets the next packets reuse the buffer the last ones were framed in', () => {
    const sender = new PacketTransport(random, () => true);
    sender.queuePayload(Buffer.from([94, 1]));
    const first = sender.drain()![0]!;
    sender.queuePayload(Buffer.from([94, 2]));
    const second = sender.drain()![0]!;
    expect(second.byteOffset).toBeGreaterThan(first.byteOffset); // not released: appended
    sender.releaseOutput();
    sender.queuePayload(Buffer.from([94, 3]));
    const third = sender.drain()![0]!;
    expect(third.buffer).toBe(first.buffer);
    expect(third.byteOffset).toBe(first.byteOffset);
    // Queued, undrained packets keep their place: releasing then is a no-op.
    sender.queuePayload(Buffer.from([94, 4]));
    sender.releaseOutput();
    sender.queuePayload(Buffer.from([94, 5]));
    const [both] = sender.drain()!;
    const receiver = new PacketTransport(random, () => true);
    receiver.receive(Buffer.from(both!));
    expect([hex(receiver.readPacket()), hex(receiver.readPacket())]).toEqual(['5e04', '5e05']);
  });
});
