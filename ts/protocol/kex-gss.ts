// GSSAPI-authenticated key exchange (RFC 4462 §2, with the SHA-2 and elliptic-curve methods
// of RFC 8732): gss-group14-sha256-*, gss-nistp256-sha256-* and gss-curve25519-sha256-*, the
// suffix naming the mechanism (Kerberos 5 here). The server proves who it is with a GSSAPI
// context and a MIC over the exchange hash instead of a host key signature, so the host key
// may be absent ("null" host key algorithm, RFC 4462 §5).
//
// Messages 30-34 mean these things only during such an exchange and are decoded here alone.
// Every GSSAPI call is asked for as a credential request (KexStep.request), as user
// authentication asks for its own (./auth-gssapi.ts): the first one goes to the KDC and may
// take its time, and the core does no I/O. The context stays with the connection afterwards,
// for gssapi-keyex user authentication (RFC 4462 §4).

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { message } from './messages.js';
import type { GssapiAnswer, GssapiRequest } from './auth-gssapi.js';
import type { HashName, KeyAgreement, KeyAgreementKind } from '../crypto/provider.js';
import type { KexContext, KexStep } from './kex.js';

/**
 * RFC 4462 §2: base64(MD5(DER of the mechanism OID)) for Kerberos 5, 1.2.840.113554.1.2.2
 * (06 09 2a 86 48 86 f7 12 01 02 02). A constant: the names are needed before any crypto
 * provider is at hand; test/unit/protocol/kex-gss.test.ts recomputes it.
 */
export const KRB5_KEX_SUFFIX = 'toWM5Slw5Ew8Mqkay+al2g==';

interface GssKexFamily {
  hash: HashName;
  /** The values travel as strings (RFC 8732 §4, ECDH and X25519), not mpints (§3, MODP). */
  ecdh: boolean;
  agreement: KeyAgreementKind;
}

const FAMILIES: Record<string, GssKexFamily> = {
  'gss-curve25519-sha256-': { hash: 'sha256', ecdh: true, agreement: { kind: 'x25519' } },
  'gss-nistp256-sha256-': { hash: 'sha256', ecdh: true, agreement: { kind: 'ecdh', curve: 'nistp256' } },
  'gss-group14-sha256-': { hash: 'sha256', ecdh: false, agreement: { kind: 'modp', group: 'group14' } },
};

/** The GSSAPI key exchange names for Kerberos 5, strongest first: offered with sshAuthMode 6. */
export const GSS_KEX_ALGORITHMS = Object.keys(FAMILIES).map((prefix) => prefix + KRB5_KEX_SUFFIX);

/** The host key algorithm for a key exchange that has no host key (RFC 4462 §5). */
export const NULL_HOST_KEY = 'null';

export function isGssKex(name: string): boolean {
  return GSS_KEX_ALGORITHMS.includes(name);
}

// RFC 4462 §2.5 (and RFC 8732 §4 for the string forms).
const MSG_KEXGSS = { INIT: 30, CONTINUE: 31, COMPLETE: 32, HOSTKEY: 33, ERROR: 34 } as const;
const KexgssInitMpint = message(MSG_KEXGSS.INIT, 'SSH_MSG_KEXGSS_INIT', { token: 'string', e: 'mpint' });
const KexgssInitString = message(MSG_KEXGSS.INIT, 'SSH_MSG_KEXGSS_INIT', { token: 'string', e: 'string' });
export const KexgssContinue = message(MSG_KEXGSS.CONTINUE, 'SSH_MSG_KEXGSS_CONTINUE', { token: 'string' });
const KexgssCompleteMpint = message(MSG_KEXGSS.COMPLETE, 'SSH_MSG_KEXGSS_COMPLETE', { f: 'mpint', mic: 'string', tail: 'rest' });
const KexgssCompleteString = message(MSG_KEXGSS.COMPLETE, 'SSH_MSG_KEXGSS_COMPLETE', { f: 'string', mic: 'string', tail: 'rest' });
export const KexgssHostkey = message(MSG_KEXGSS.HOSTKEY, 'SSH_MSG_KEXGSS_HOSTKEY', { hostKey: 'string' });
export const KexgssError = message(MSG_KEXGSS.ERROR, 'SSH_MSG_KEXGSS_ERROR', { major: 'uint32', minor: 'uint32', message: 'utf8', language: 'string' });

export function encodeKexgssInit(ecdh: boolean, token: Uint8Array, publicValue: Uint8Array): Uint8Array {
  return ecdh ? KexgssInitString.encode({ token, e: publicValue }) : KexgssInitMpint.encode({ token, e: publicValue });
}

/** SSH_MSG_KEXGSS_COMPLETE: f (or Q_S), the MIC of H, and the server's last token if it has one. */
export function decodeKexgssComplete(ecdh: boolean, payload: Uint8Array): { f: Uint8Array; mic: Uint8Array; token: Uint8Array | null } {
  const { f, mic, tail } = ecdh ? KexgssCompleteString.decode(payload) : KexgssCompleteMpint.decode(payload);
  const r = new Reader(tail);
  const token = r.boolean() ? r.string() : null;
  r.done('SSH_MSG_KEXGSS_COMPLETE');
  return { f, mic, token };
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type KexRequest = WithoutId<Extract<GssapiRequest, { kind: 'gssapiToken' } | { kind: 'gssapiVerifyMic' }>>;

/** A key exchange step that may wait on a GSSAPI call. */
export interface GssKexStep extends KexStep {
  request?: KexRequest;
}

type GssKexState =
  | { kind: 'awaitFirstToken' }
  /** KEXGSS_INIT (or a CONTINUE) is out: HOSTKEY, CONTINUE, COMPLETE or ERROR may come. */
  | { kind: 'expectReply'; established: boolean }
  | { kind: 'awaitToken' }
  /** COMPLETE came with the server's last token, which the context is reading. */
  | { kind: 'awaitFinalToken'; complete: { f: Uint8Array; mic: Uint8Array } }
  | { kind: 'awaitMicCheck'; outcome: { sharedSecret: Uint8Array; exchangeHash: Uint8Array } }
  | { kind: 'done' };

/** What GSS kex ends with: no signature, and a host key only if the server sent one. */
export interface GssKexOutcome {
  hostKey: Uint8Array | null;
  sharedSecret: Uint8Array;
  exchangeHash: Uint8Array;
}

/** The client side of one GSSAPI key exchange. */
export class GssKexMethod {
  readonly hash: HashName;
  private readonly family: GssKexFamily;
  private state: GssKexState = { kind: 'awaitFirstToken' };
  private agreement: KeyAgreement | null = null;
  private hostKey: Uint8Array | null = null;
  /** The outcome, once the MIC over H checked out (read by the core). */
  gssOutcome: GssKexOutcome | null = null;

  constructor(
    readonly name: string,
    private readonly ctx: KexContext,
  ) {
    const family = FAMILIES[name.slice(0, name.length - KRB5_KEX_SUFFIX.length)];
    if (!family || !name.endsWith(KRB5_KEX_SUFFIX)) throw new SshError(Code.UnsupportedAlgorithm, `key exchange ${name} is not implemented`, 'local');
    this.family = family;
    this.hash = family.hash;
  }

  /** The first token of a fresh context comes before KEXGSS_INIT can be sent. */
  start(): GssKexStep {
    this.agreement = this.ctx.provider.keyAgreement(this.family.agreement);
    return { send: [], request: { kind: 'gssapiToken', purpose: 'kex', input: null } };
  }

  /** The kind of answer awaited, or null when a message is. */
  get pendingKind(): GssapiAnswer['kind'] | null {
    const kind = this.state.kind;
    if (kind === 'awaitFirstToken' || kind === 'awaitToken' || kind === 'awaitFinalToken') return 'gssapiToken';
    return kind === 'awaitMicCheck' ? 'gssapiVerifyMic' : null;
  }

  /** A message numbered 30-49. */
  handle(payload: Uint8Array): GssKexStep {
    const state = this.state;
    const id = payload[0]!;
    if (state.kind !== 'expectReply') {
      throw new SshError(Code.ProtocolError, `key exchange message ${id} while ${state.kind === 'done' ? 'the exchange is over' : 'a GSSAPI call is under way'}`, 'peer');
    }
    switch (id) {
      case MSG_KEXGSS.HOSTKEY:
        if (this.hostKey) throw new SshError(Code.ProtocolError, 'a second SSH_MSG_KEXGSS_HOSTKEY', 'peer');
        this.hostKey = KexgssHostkey.decode(payload).hostKey;
        return { send: [] };
      case MSG_KEXGSS.ERROR: {
        // Informational (§2.5); the server disconnects after it, and its text is logged.
        const error = KexgssError.decode(payload);
        const text = error.message
          .replace(/[\u0000-\u001f\u007f]/g, ' ')
          .slice(0, 512)
          .trim();
        throw new SshError(Code.AuthFailed, `GSSAPI key exchange failed on the server: ${text} (major ${error.major}, minor ${error.minor})`, 'peer');
      }
      case MSG_KEXGSS.CONTINUE: {
        if (state.established) throw new SshError(Code.ProtocolError, 'SSH_MSG_KEXGSS_CONTINUE after our GSSAPI context was established', 'peer');
        this.state = { kind: 'awaitToken' };
        return { send: [], request: { kind: 'gssapiToken', purpose: 'kex', input: KexgssContinue.decode(payload).token } };
      }
      case MSG_KEXGSS.COMPLETE: {
        const complete = decodeKexgssComplete(this.family.ecdh, payload);
        if (complete.token) {
          if (state.established) throw new SshError(Code.ProtocolError, 'SSH_MSG_KEXGSS_COMPLETE with a token after our GSSAPI context was established', 'peer');
          this.state = { kind: 'awaitFinalToken', complete };
          return { send: [], request: { kind: 'gssapiToken', purpose: 'kex', input: complete.token } };
        }
        if (!state.established) throw new SshError(Code.ProtocolError, 'SSH_MSG_KEXGSS_COMPLETE without a token while our GSSAPI context still needs one', 'peer');
        return this.checkMic(complete);
      }
    }
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during the GSSAPI key exchange`, 'peer');
  }

  /** Goes on with the answer to the pending GSSAPI request (the core checked its kind). */
  answer(answer: GssapiAnswer): GssKexStep {
    const state = this.state;
    if (answer.kind === 'gssapiToken' && (state.kind === 'awaitFirstToken' || state.kind === 'awaitToken' || state.kind === 'awaitFinalToken')) {
      if (!answer.token) throw new SshError(Code.AuthFailed, `GSSAPI key exchange: ${answer.reason ?? 'the GSSAPI context failed'}`, 'local');
      if (state.kind === 'awaitFinalToken') {
        if (!answer.complete) throw new SshError(Code.AuthFailed, 'GSSAPI key exchange: the server completed, but our GSSAPI context is not established', 'peer');
        return this.checkMic(state.complete);
      }
      const send: Uint8Array[] = [];
      if (state.kind === 'awaitFirstToken') send.push(encodeKexgssInit(this.family.ecdh, answer.token, this.agreement!.publicValue));
      else if (answer.token.length > 0) send.push(KexgssContinue.encode({ token: answer.token }));
      this.state = { kind: 'expectReply', established: answer.complete };
      return { send };
    }
    if (answer.kind === 'gssapiVerifyMic' && state.kind === 'awaitMicCheck') {
      // §2.1: the MIC over H is what authenticates the server (and so the keys).
      if (!answer.valid) throw new SshError(Code.HostKeyVerifyFailed, `the server's GSSAPI MIC over the exchange hash does not verify: ${answer.reason ?? 'invalid'}`, 'peer');
      this.state = { kind: 'done' };
      this.gssOutcome = { hostKey: this.hostKey, ...state.outcome };
      return { send: [] };
    }
    return { send: [] };
  }

  /** Computes K and H (RFC 4462 §2.1, RFC 8732 §4), then asks for the MIC over H to be checked. */
  private checkMic(complete: { f: Uint8Array; mic: Uint8Array }): GssKexStep {
    const agreement = this.agreement!;
    const sharedSecret = agreement.computeSecret(complete.f);
    const h = new Writer(2048)
      .string(this.ctx.clientVersion)
      .string(this.ctx.serverVersion)
      .string(this.ctx.clientKexInit)
      .string(this.ctx.serverKexInit)
      .string(this.hostKey ?? new Uint8Array(0));
    if (this.family.ecdh) h.string(agreement.publicValue).string(complete.f);
    else h.mpint(agreement.publicValue).mpint(complete.f);
    h.mpint(sharedSecret);
    const exchangeHash = this.ctx.provider.hash(this.family.hash, h.finish());
    this.state = { kind: 'awaitMicCheck', outcome: { sharedSecret, exchangeHash } };
    return { send: [], request: { kind: 'gssapiVerifyMic', data: exchangeHash, mic: complete.mic } };
  }
}
