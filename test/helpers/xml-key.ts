// RSA keys in the XML form .NET's RSA.ToXmlString(true) writes (<RSAKeyValue> with each part
// in base64), for the XML store tests: there is no .NET here to write one, so the document is
// made from node:crypto's JWK export, element for element as Microsoft documents the format.

import type { KeyObject } from 'node:crypto';
import { RSA_XML_PARTS } from '../../ts/crypto/xml-key.js';

// The element names and their JWK members are the reader's table: a fact of the format.
const ELEMENTS = RSA_XML_PARTS;

/** `<RSAKeyValue>…</RSAKeyValue>` for an RSA key; with `publicOnly`, Modulus and Exponent alone. */
export function rsaKeyXml(key: KeyObject, publicOnly = false): string {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  const parts = (publicOnly ? ELEMENTS.slice(0, 2) : ELEMENTS).map(([element, member]) => `<${element}>${Buffer.from(jwk[member]!, 'base64url').toString('base64')}</${element}>`);
  return `<RSAKeyValue>${parts.join('')}</RSAKeyValue>`;
}
