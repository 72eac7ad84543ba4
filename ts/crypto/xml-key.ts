// XML key stores: the <RSAKeyValue> document .NET writes with RSA.ToXmlString(true) (and the
// W3C XML-DSig KeyValue it extends, RFC 3275 §4.4.2.2): the RSA parts as base64 big-endian
// integers, Modulus, Exponent, P, Q, DP, DQ, InverseQ and D, each in its own element.
//
// The document is flat (one root, eight leaf elements of base64 text, no attributes), so it is
// read with a pattern per element rather than an XML parser: anything else (nesting, CDATA,
// entities, a second root) is not this format and is refused. Only RSA exists in this form:
// .NET writes no XML for EC keys with their private part. Errors are 10022 and quote nothing.

import * as crypto from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';
import { keyPairIsConsistent } from './ssh-key-parts.js';

function xmlError(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

const MAX_XML_BYTES = 64 * 1024;

/** The element names, in .NET's order, and the JWK member each one is. */
export const RSA_XML_PARTS = [
  ['Modulus', 'n'],
  ['Exponent', 'e'],
  ['P', 'p'],
  ['Q', 'q'],
  ['DP', 'dp'],
  ['DQ', 'dq'],
  ['InverseQ', 'qi'],
  ['D', 'd'],
] as const;

/** True when `text` opens like an XML key document (an optional declaration, then a key element). */
export function looksLikeXmlKey(text: string): boolean {
  return /^\s*(?:<\?xml[^>]*\?>\s*)?<(?:RSA|DSA|ECDSA)KeyValue[\s>]/.test(text);
}

/** Loads the RSA private key of an <RSAKeyValue> document. */
export function loadXmlKey(text: string): crypto.KeyObject {
  if (text.length > MAX_XML_BYTES) throw xmlError(`the XML key is larger than ${MAX_XML_BYTES} bytes`);
  const root = /^\s*(?:<\?xml[^>]*\?>\s*)?<(\w+)>([\s\S]*)<\/\1>\s*$/.exec(text);
  if (!root) throw xmlError('not an XML key document (<RSAKeyValue>…</RSAKeyValue>)');
  if (root[1] !== 'RSAKeyValue') {
    throw xmlError(`an XML ${root[1]} cannot be used: only RSA keys exist with their private part in this form (<RSAKeyValue>)`);
  }
  const body = root[2]!;
  const jwk: Record<string, string> = { kty: 'RSA' };
  let rest = body;
  for (const [element, member] of RSA_XML_PARTS) {
    const pattern = new RegExp(`<${element}>\\s*([A-Za-z0-9+/=\\s]*?)\\s*</${element}>`, 'g');
    const found = [...body.matchAll(pattern)];
    if (found.length > 1) throw xmlError(`the XML key has ${element} twice`);
    if (found.length === 1) {
      jwk[member] = Buffer.from(found[0]![1]!.replace(/\s/g, ''), 'base64').toString('base64url');
      rest = rest.replace(found[0]![0], '');
    }
  }
  if (rest.trim() !== '') throw xmlError('the XML key holds elements other than the RSA parts (Modulus, Exponent, P, Q, DP, DQ, InverseQ, D)');
  if (!jwk.n || !jwk.e) throw xmlError('the XML key has no Modulus or no Exponent');
  if (!jwk.d) throw xmlError('this XML key is a public key; a private key (with D, P, Q, DP, DQ and InverseQ) is needed to sign');
  const missing = RSA_XML_PARTS.filter(([, member]) => !jwk[member]).map(([element]) => element);
  if (missing.length) throw xmlError(`the XML RSA key lacks ${missing.join(', ')}`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  } catch {
    throw xmlError('the XML RSA key is malformed (its parts do not make a key)');
  }
  if (!keyPairIsConsistent(key)) throw xmlError('the XML RSA key is malformed (its parts do not make a key)');
  return key;
}
