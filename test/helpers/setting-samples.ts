// Sample values for the documented settings, shared by the table-driven tests of the surface
// (test/unit/tunnel/surface.test.ts) and of changes while connected (test/integration/api.test.ts).

import { generateKeyPairSync } from 'node:crypto';
import { SETTINGS, splitList } from '../../ts/tunnel/settings.js';

const caKeyLine = `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12)]).toString('base64')} ca`;

/** A valid value different from the default, where the kind alone does not give one. */
const SAMPLES: Record<string, string> = {
  SSHAcceptServerCAKey: caKeyLine,
  CodePage: '28591',
  ForwardingLocalHost: '127.0.0.1',
  ClientSSHVersionString: 'SSH-2.0-sample_1',
  SSHVersionPattern: '*SSH-2.0-*',
  SSHAcceptServerHostKeyFingerPrint: 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU',
  FirewallType: '3',
  FirewallPort: '3128',
  MaxLineLength: '4096',
};

/** Settings whose reading is not the value set, by design. */
export const READS_BACK: Record<string, (value: string) => string> = {
  FirewallPassword: () => '********', // MaskSensitiveData
};

/** A valid value of `name` that is not its default. */
export function sampleFor(name: string): string {
  if (SAMPLES[name]) return SAMPLES[name];
  const spec = SETTINGS[name]!;
  switch (spec.kind) {
    case 'bool':
      return spec.default ? 'False' : 'True';
    case 'int': {
      if (spec.intChoices) return String(spec.intChoices.find((c) => c !== spec.default));
      const candidate = spec.max ?? (spec.min ?? 0) + 7;
      return String(candidate === spec.default ? candidate - 1 : candidate);
    }
    case 'list':
      return splitList(String(spec.default))[0]!;
    case 'string':
      return spec.choices ? spec.choices.find((c) => c !== spec.default)! : 'sample-value';
  }
}
