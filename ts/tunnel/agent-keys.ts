// The keys of an ssh-agent as identities for publickey authentication: listed once per
// connection (an agent's keys can change between reconnects), offered with a query as file keys
// are, and signed by the agent itself (../net/agent.ts), which answers later: the core waits
// for it (../protocol/auth-answer.ts). The agent connection lives as long as the SSH one.

import { createHash } from 'node:crypto';
import { AgentClient, type AgentIdentity } from '../net/agent.js';
import type { PublicKeyIdentity } from '../protocol/auth.js';
import { SshError, Code } from '../protocol/errors.js';

export interface AgentKeys {
  identities: PublicKeyIdentity[];
  close(): void;
}

/** Where the agent listens: the given path, or SSH_AUTH_SOCK for `true`; null when there is none. */
export function agentPath(agent: boolean | string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (typeof agent === 'string') return agent === '' ? null : agent;
  return agent ? (env.SSH_AUTH_SOCK ?? null) || null : null;
}

function describe(id: AgentIdentity): string {
  const fingerprint = createHash('sha256').update(id.publicKey).digest('base64').replace(/=+$/, '');
  return `${id.comment || 'agent key'} (${id.keyType} SHA256:${fingerprint}, from the agent)`;
}

/** Connects to the agent at `path` and lists its keys; rejects with the socket's code when it cannot. */
export async function agentKeys(path: string, timeoutMs: number): Promise<AgentKeys> {
  const client = await AgentClient.connect(path, timeoutMs);
  try {
    const listed = await client.identities();
    const identities = listed.map((id): PublicKeyIdentity => ({
      name: describe(id),
      publicKey: { blob: id.publicKey, keyType: id.keyType },
      load: () => ({
        ok: true,
        signer: { publicKey: id.publicKey, keyType: id.keyType, sign: (algorithm, data) => client.sign(id.publicKey, data, algorithm) },
      }),
    }));
    return { identities, close: () => client.close() };
  } catch (error) {
    client.close();
    throw error instanceof SshError ? error : new SshError(Code.BadState, String(error), 'local');
  }
}
