// The documented read-only certificate properties, forty-odd getters that differ only in their
// prefix and field, made from one table instead of written out: sshCertFingerprint …
// sshCertVersion for the client key, sshAcceptServerHostKeyFingerprint … for the server key.
// The settable members of each group (store type, store, password, subject, encoded) are
// ordinary members of SSHReverseTunnel. See ./certificate-info.ts for what each field holds.

import { READ_ONLY_CERTIFICATE_FIELDS, type CertificateInfo } from './certificate-info.js';

type ReadOnlyField = (typeof READ_ONLY_CERTIFICATE_FIELDS)[number];

/** `sshCertFingerprintSHA1` from ('sshCert', 'fingerprintSHA1'). */
type PropertyName<Prefix extends string, Field extends string> = `${Prefix}${Capitalize<Field>}`;

/** The read-only properties of one group, e.g. `readonly sshCertPublicKeyLength: number`. */
export type CertificateProperties<Prefix extends string> = {
  readonly [Field in ReadOnlyField as PropertyName<Prefix, Field>]: CertificateInfo[Field];
};

function propertyName(prefix: string, field: string): string {
  return prefix + field[0]!.toUpperCase() + field.slice(1);
}

/**
 * Defines the group's getters on a prototype. They have no setters: assigning one throws a
 * TypeError in strict code (every ES module), as for any read-only property.
 */
export function installCertificateProperties<Owner extends object>(prototype: Owner, prefix: string, describe: (owner: Owner) => Readonly<CertificateInfo>): void {
  for (const field of READ_ONLY_CERTIFICATE_FIELDS) {
    Object.defineProperty(prototype, propertyName(prefix, field), {
      get(this: Owner) {
        return describe(this)[field];
      },
      enumerable: false,
      configurable: true,
    });
  }
}

/** Every read-only property name of a group, for documentation checks and tests. */
export function certificatePropertyNames(prefix: string): string[] {
  return READ_ONLY_CERTIFICATE_FIELDS.map((field) => propertyName(prefix, field));
}
