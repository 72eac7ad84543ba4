// ts/crypto/select.ts: which failed loads the provider's log line reports.

import { describe, expect, it } from 'vitest';
import { providersPassedOver, type CryptoProviderName } from '../../../ts/crypto/select.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import type { CryptoProvider } from '../../../ts/crypto/provider.js';

const nodeProvider = new NodeCryptoProvider();

describe('providersPassedOver', () => {
  it('lists the failed loads before the provider that loaded, in order', () => {
    const results = new Map<CryptoProviderName, CryptoProvider | Error>([
      ['wasm', new Error('bindings/revtun-core.wasm: no such file\nsecond line')],
      ['native', new Error('no prebuilt package for linux-arm64-musl and no local build')],
      ['node', nodeProvider],
    ]);
    expect(providersPassedOver(results)).toEqual(['native: no prebuilt package for linux-arm64-musl and no local build', 'wasm: bindings/revtun-core.wasm: no such file']);
  });

  it('leaves out a provider after the chosen one that failed when asked for by name', () => {
    // native was chosen; wasm failed later, when something asked for it by name: the log line
    // of a tunnel on native must not report a fallback.
    const results = new Map<CryptoProviderName, CryptoProvider | Error>([
      ['native', nodeProvider],
      ['wasm', new Error('bindings/revtun-core.wasm: no such file')],
    ]);
    expect(providersPassedOver(results)).toEqual([]);
  });
});
