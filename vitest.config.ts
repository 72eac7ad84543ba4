import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Unit tests run once. The integration suite (real sshd, Dropbear and foreign peers on
// loopback) runs once per crypto provider, chosen through REVTUN_CRYPTO, which makes a
// provider that fails to load an error instead of a silent fallback, and once more on the
// native provider with the JavaScript data plane forced (integration:js-plane).
const integration = (provider: 'native' | 'wasm' | 'node', exclude: string[] = []) => ({
  extends: true as const,
  test: {
    name: `integration:${provider}`,
    include: ['test/integration/**/*.test.ts'],
    exclude,
    env: { REVTUN_CRYPTO: provider },
  },
});

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most integration tests wait on servers and sockets, not on the CPU: three files at a time
    // on this 2-core machine take about a third of the time one at a time does (vitest's
    // default here would be a single worker). Every test picks free ports and its own names.
    maxWorkers: Math.max(3, availableParallelism() - 1),
    minWorkers: 1,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/fuzz/**/*.test.ts'] } },
      integration('native'),
      // Bun and Deno run under the native provider's project; the WASM provider's own smoke
      // test under both runtimes is part of that file. Key stores are read before any packet
      // is sealed, by node:crypto whatever the provider: once is enough.
      // The install test chooses its provider itself (it checks what revtun picks with none named).
      // GSSAPI runs on the native addon alone (its own test checks the refusal without it).
      // The socket options test names the provider of each of its tests itself.
      // The identities test writes the test user's own ~/.ssh: with three files at a time, a
      // second project running it beside the first removed its key files (seen on CI).
      // `revtun speed` times every provider whatever REVTUN_CRYPTO says: once is enough.
      // The native data plane is the addon's: with another provider forced it never applies.
      integration('wasm', [
        'test/integration/runtimes.test.ts',
        'test/integration/install.test.ts',
        'test/integration/auto-provider.test.ts',
        'test/integration/identities.test.ts',
        'test/integration/key-stores.test.ts',
        'test/integration/gssapi.test.ts',
        'test/integration/socket-options.test.ts',
        'test/integration/linger.test.ts',
        'test/integration/cli-speed.test.ts',
        'test/integration/data-plane.test.ts',
      ]),
      // The JavaScript data plane on the native provider (REVTUN_DATA_PLANE=js forces it; the
      // default, DataPlane=native, hands every connection it can to the addon's relay thread,
      // so integration:native above runs on the native plane): the same integration files once
      // more, with Node's event loop moving every byte. Left out: those that check the
      // provider's own choices or write shared state (identities: the test user's ~/.ssh, see
      // above), and the data plane's own file, which asks for the native plane in each test.
      {
        extends: true as const,
        test: {
          name: 'integration:js-plane',
          include: ['test/integration/**/*.test.ts'],
          exclude: [
            'test/integration/runtimes.test.ts',
            'test/integration/install.test.ts',
            'test/integration/auto-provider.test.ts',
            'test/integration/identities.test.ts',
            'test/integration/key-stores.test.ts',
            'test/integration/cli-speed.test.ts',
            'test/integration/data-plane.test.ts',
          ],
          env: { REVTUN_CRYPTO: 'native', REVTUN_DATA_PLANE: 'js' },
        },
      },
      integration('node', [
        'test/integration/runtimes.test.ts',
        'test/integration/install.test.ts',
        'test/integration/auto-provider.test.ts',
        'test/integration/identities.test.ts',
        'test/integration/key-stores.test.ts',
        'test/integration/gssapi.test.ts',
        'test/integration/socket-options.test.ts',
        'test/integration/linger.test.ts',
        'test/integration/cli-speed.test.ts',
        'test/integration/data-plane.test.ts',
      ]),
    ],
  },
});
