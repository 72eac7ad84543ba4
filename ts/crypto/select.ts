// Which CryptoProvider revtun uses: unless the caller or REVTUN_CRYPTO names one, the automatic
// provider (./auto.ts), which runs each packet algorithm on the fastest backend that loaded. A
// provider that was asked for by name and cannot load is an error; in automatic mode the
// reasons are kept for the logs.

import * as crypto from 'node:crypto';
import type { CryptoProvider } from './provider.js';
import { NodeCryptoProvider } from './node.js';
import { CoreCryptoProvider } from './core.js';
import { loadNativeCore } from './native.js';
import { loadWasmCore } from './wasm.js';
import { AutoCryptoProvider, type Backend } from './auto.js';
import { SshError, Code } from '../protocol/errors.js';

/** The providers by name, as REVTUN_CRYPTO and loadCryptoProvider take them. */
export type CryptoProviderName = 'native' | 'wasm' | 'node';
export const CRYPTO_PROVIDER_NAMES: readonly CryptoProviderName[] = ['native', 'wasm', 'node'];

const loaded = new Map<CryptoProviderName, CryptoProvider | Error>();

function tryLoad(name: CryptoProviderName): CryptoProvider | Error {
  let result = loaded.get(name);
  if (result === undefined) {
    try {
      result = name === 'node' ? new NodeCryptoProvider() : new CoreCryptoProvider(name === 'native' ? loadNativeCore() : loadWasmCore());
    } catch (error) {
      result = error instanceof Error ? error : new Error(String(error));
    }
    loaded.set(name, result);
  }
  return result;
}

export function isCryptoProviderName(name: string): name is CryptoProviderName {
  return (CRYPTO_PROVIDER_NAMES as readonly string[]).includes(name);
}

/**
 * The provider called `name`. Loading happens once per process; a provider that cannot load
 * throws SshError 10022 with the reason.
 */
export function loadCryptoProvider(name: CryptoProviderName): CryptoProvider {
  const result = tryLoad(name);
  if (result instanceof Error) {
    throw new SshError(Code.BadArgument, `crypto provider "${name}" is not available: ${result.message}`, 'local');
  }
  return result;
}

/**
 * Why each provider before the chosen one was passed over, for the logs: the failed loads in
 * CRYPTO_PROVIDER_NAMES order up to the first that loaded. A provider after that one may have
 * failed too (asked for by name elsewhere in the process), but automatic mode never tried it.
 */
export function skippedCryptoProviders(): string[] {
  return providersPassedOver(loaded);
}

/** skippedCryptoProviders() over `results`, the outcome of each provider's load so far. */
export function providersPassedOver(results: ReadonlyMap<CryptoProviderName, CryptoProvider | Error>): string[] {
  const passedOver: string[] = [];
  for (const name of CRYPTO_PROVIDER_NAMES) {
    const result = results.get(name);
    if (result === undefined) continue;
    if (!(result instanceof Error)) break;
    passedOver.push(`${name}: ${result.message.split('\n')[0]}`);
  }
  return passedOver;
}

function requestedByEnvironment(): string | undefined {
  return (typeof process !== 'undefined' ? process.env['REVTUN_CRYPTO'] : undefined)?.trim().toLowerCase() || undefined;
}

let automatic: AutoCryptoProvider | undefined;

/**
 * The automatic provider over the backends that load (the WASM core only when the native addon
 * does not: the native core is at least as fast for everything the WASM one does), whatever
 * REVTUN_CRYPTO says. Throws 10022 only if node:crypto itself is missing.
 */
export function automaticCryptoProvider(): CryptoProvider {
  if (!automatic) {
    const backends = new Map<Backend, CryptoProvider>();
    for (const name of CRYPTO_PROVIDER_NAMES) {
      if (name === 'wasm' && backends.has('native')) continue;
      const result = tryLoad(name);
      if (!(result instanceof Error)) backends.set(name, result);
    }
    if (!backends.has('node')) return loadCryptoProvider('node');
    automatic = new AutoCryptoProvider(backends);
  }
  return automatic;
}

/**
 * The provider revtun uses when none is given: REVTUN_CRYPTO (native, wasm or node) if set,
 * else the automatic one (automaticCryptoProvider()).
 */
export function defaultCryptoProvider(): CryptoProvider {
  const requested = requestedByEnvironment();
  if (requested) {
    if (!isCryptoProviderName(requested)) {
      throw new SshError(Code.BadArgument, `REVTUN_CRYPTO must be native, wasm or node, not "${requested}"`, 'local');
    }
    return loadCryptoProvider(requested);
  }
  return automaticCryptoProvider();
}

/**
 * Why defaultCryptoProvider() chose what it chose, for the log line that names the provider:
 * REVTUN_CRYPTO, or the providers passed over and why ("native: no prebuilt package for
 * linux-arm64-musl and no local build"), with `fellBack` set; empty when the first choice loaded.
 */
export function defaultCryptoProviderReason(): { reason: string; fellBack: boolean } {
  const requested = requestedByEnvironment();
  if (requested) return { reason: `REVTUN_CRYPTO=${requested}`, fellBack: false };
  const skipped = skippedCryptoProviders();
  return skipped.length ? { reason: `not loaded: ${skipped.join('; ')}`, fellBack: true } : { reason: '', fellBack: false };
}

/** One line naming a provider and, for the Rust core, its build; for the automatic one, which backend serves which cipher. */
export function describeCryptoProvider(provider: CryptoProvider): string {
  if (provider instanceof AutoCryptoProvider) return `${provider.name}: ${provider.description}`;
  return provider instanceof CoreCryptoProvider ? `${provider.name} (${provider.description})` : provider.name;
}

/** Whether node:crypto runs in FIPS mode (process-wide: `node --enable-fips`, or setFipsMode). */
export function fipsMode(): boolean {
  return crypto.getFips() === 1;
}

/**
 * Turns node:crypto's FIPS mode on or off for the whole process, as UseFIPSCompliantAPI is
 * documented to. Only OpenSSL's FIPS provider is FIPS-validated, so while it is on revtun's own
 * Rust core is not used (see SSHReverseTunnel.cryptoProvider). A runtime whose OpenSSL has no
 * FIPS provider (Node's bundled OpenSSL, unless built for it) refuses with 10022.
 */
export function setFipsMode(on: boolean): void {
  if (fipsMode() === on) return;
  try {
    crypto.setFips(on);
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    throw new SshError(Code.BadArgument, `UseFIPSCompliantAPI: this runtime's OpenSSL cannot ${on ? 'enter' : 'leave'} FIPS mode (${reason})`, 'local');
  }
}
