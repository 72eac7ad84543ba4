// The error-code table against the reference documentation, the OS errno mapping, and the
// crypto cores' status tables (read from the cores themselves, never copied into TypeScript).

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Code, ERROR_TABLE, errorCodeRows, socketErrorCode, SshError } from '../../../ts/protocol/errors.js';
import { loadNativeCore } from '../../../ts/crypto/native.js';
import { loadWasmCore } from '../../../ts/crypto/wasm.js';
import { openFailure, sealFailure } from '../../../ts/crypto/core.js';

const reference = readFileSync(new URL('../../../../shared/reference/SSHReverseTunnel.txt', import.meta.url), 'utf8');

/** Every "NNNN   meaning" line of the reference's error sections. */
function documentedCodes(): Map<number, string> {
  const section = reference.slice(reference.indexOf('SSHReverseTunnel Errors'));
  const codes = new Map<number, string>();
  for (const match of section.matchAll(/^(\d{3,5})\s{2,}(.+)$/gm)) codes.set(Number(match[1]), match[2]!);
  return codes;
}

describe('the error-code table', () => {
  it('has every code the reference documents, and no number it does not', () => {
    const documented = documentedCodes();
    expect(documented.size).toBeGreaterThan(100); // the parse found the sections
    const ours = new Set(errorCodeRows().map((row) => row.code));
    expect([...documented.keys()].filter((code) => !ours.has(code))).toEqual([]);
    expect([...ours].filter((code) => !documented.has(code))).toEqual([]);
  });

  it('names each number once (10057 is documented twice, for the socket and the tunnel)', () => {
    const rows = errorCodeRows();
    expect(new Set(rows.map((r) => r.code)).size).toBe(rows.length);
    expect(Code.TunnelReconnectLimit).toBe(10057);
    expect(Code.NotSocketConnected).toBe(10057);
  });

  it('gives every code a meaning of its own words, and says which ones revtun never raises', () => {
    for (const row of errorCodeRows()) expect(row.meaning.length, row.name).toBeGreaterThan(5);
    const neverRaised = errorCodeRows()
      .filter((r) => !r.raised)
      .map((r) => r.code);
    expect(neverRaised).toContain(10093); // Winsock
    expect(neverRaised).not.toContain(1032);
    expect(Code.AuthFailed).toBe(ERROR_TABLE.AuthFailed[0]);
  });
});

describe('socketErrorCode', () => {
  it.each([
    ['ECONNREFUSED', 10061],
    ['ECONNRESET', 10054],
    ['EPIPE', 10054],
    ['ETIMEDOUT', 10060],
    ['EHOSTUNREACH', 10065],
    ['ENETUNREACH', 10051],
    ['EADDRINUSE', 10048],
    ['EADDRNOTAVAIL', 10049],
    ['ENOTFOUND', 11001],
    ['EAI_AGAIN', 11002],
    ['EAI_FAIL', 11003],
    ['ESERVFAIL', 11003],
    ['ENODATA', 11004],
    ['ENOBUFS', 10055],
    ['EMFILE', 10024],
    ['EINTR', 10004],
  ])('%s is %i', (errno, code) => {
    expect(socketErrorCode(errno)).toBe(code);
  });

  it('an errno with no documented counterpart, or none at all, is 1036; inherited names are not codes', () => {
    expect(socketErrorCode('EXDEV')).toBe(1036);
    expect(socketErrorCode(undefined)).toBe(1036);
    expect(socketErrorCode('toString')).toBe(1036);
    expect(socketErrorCode('__proto__')).toBe(1036);
  });
});

describe("the crypto cores' status tables", () => {
  const cores = [loadNativeCore(), loadWasmCore()];

  it('come from the cores, agree between native and WASM, and exclude 0 (success)', () => {
    const [native, wasm] = cores;
    expect(native!.statuses.size).toBeGreaterThanOrEqual(4);
    expect([...wasm!.statuses]).toEqual([...native!.statuses]);
    expect(native!.statuses.has(0)).toBe(false);
    for (const message of native!.statuses.values()) expect(message).toMatch(/^[a-z].{10,}/);
  });

  it("turn a status into the core's own words, with the documented code for the direction", () => {
    const [native] = cores;
    const [status, message] = [...native!.statuses].find(([, text]) => /authentication code/.test(text))!;
    const opened = openFailure(native!.statuses, status);
    expect(opened).toBeInstanceOf(SshError);
    expect(opened.code).toBe(Code.CannotDecrypt);
    expect(opened.message).toContain(message);
    expect(sealFailure(native!.statuses, status).code).toBe(Code.CannotEncrypt);
    expect(openFailure(native!.statuses, 999).message).toContain('core status 999');
  });

  it('a key of the wrong length is refused with the core’s message (WASM and native)', () => {
    for (const core of cores) {
      const keys = { cipher: 'aes128-ctr', mac: 'hmac-sha2-256', key: new Uint8Array(3), iv: new Uint8Array(16), macKey: new Uint8Array(32) };
      let error: unknown;
      try {
        core.createSealer(keys);
      } catch (e) {
        error = e;
      }
      expect((error as SshError).code, core.kind).toBe(Code.CannotSetKeys);
      expect((error as SshError).message, core.kind).toContain('wrong length');
    }
  });
});
