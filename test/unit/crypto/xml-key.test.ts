// RSA keys in .NET's <RSAKeyValue> XML (XMLFile/XMLBlob stores): the key itself, with or
// without an XML declaration and line breaks; a public-only document, another key type, a
// damaged or padded document are refused with 10022, quoting none of the key.

import { describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import { loadXmlKey, looksLikeXmlKey } from '../../../ts/crypto/xml-key.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { rsaKeyXml } from '../../helpers/xml-key.js';

const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const xml = rsaKeyXml(key);
const publicPem = crypto.createPublicKey(key).export({ type: 'spki', format: 'pem' });

function refusal(text: string): SshError {
  let caught: unknown;
  try {
    loadXmlKey(text);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  const error = caught as SshError;
  expect(error.code).toBe(Code.BadArgument);
  const d = /<D>([^<]+)<\/D>/.exec(text)?.[1];
  if (d) expect(`${error.message}\n${error.stack}`).not.toContain(d.slice(0, 32));
  return error;
}

describe('loadXmlKey', () => {
  it('reads the RSA key, as .NET writes it and pretty-printed with a declaration', () => {
    expect(looksLikeXmlKey(xml)).toBe(true);
    expect(crypto.createPublicKey(loadXmlKey(xml)).export({ type: 'spki', format: 'pem' })).toBe(publicPem);
    const pretty = `<?xml version="1.0" encoding="utf-8"?>\n${xml.replace(/></g, '>\n  <').replace(/([A-Za-z0-9+/=]{64})/g, '$1\n')}\n`;
    expect(looksLikeXmlKey(pretty)).toBe(true);
    expect(crypto.createPublicKey(loadXmlKey(pretty)).export({ type: 'spki', format: 'pem' })).toBe(publicPem);
  });

  it('a public key only: a private key is needed', () => {
    expect(refusal(rsaKeyXml(key, true)).message).toMatch(/^this XML key is a public key; a private key .* is needed to sign$/);
  });

  it('a part missing, twice, or a stranger element', () => {
    expect(refusal(xml.replace(/<DQ>[^<]*<\/DQ>/, '')).message).toBe('the XML RSA key lacks DQ');
    expect(refusal(xml.replace('</RSAKeyValue>', '<P>AAAA</P></RSAKeyValue>')).message).toBe('the XML key has P twice');
    expect(refusal(xml.replace('</RSAKeyValue>', '<Note>hi</Note></RSAKeyValue>')).message).toMatch(/holds elements other than the RSA parts/);
  });

  it('parts that do not make a key', () => {
    expect(refusal(xml.replace(/<Modulus>[^<]*<\/Modulus>/, '<Modulus>AAEC</Modulus>')).message).toBe('the XML RSA key is malformed (its parts do not make a key)');
  });

  it('other key types and other documents', () => {
    expect(refusal('<DSAKeyValue><P>AA==</P></DSAKeyValue>').message).toMatch(/^an XML DSAKeyValue cannot be used: only RSA keys/);
    expect(refusal('<html><body/></html>').message).toMatch(/^an XML html cannot be used/);
    expect(refusal('not xml at all').message).toMatch(/^not an XML key document/);
    expect(looksLikeXmlKey('<html>')).toBe(false);
  });
});
