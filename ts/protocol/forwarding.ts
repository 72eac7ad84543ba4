// Remote port forwarding, RFC 4254 §7: the `tcpip-forward` and `cancel-tcpip-forward` global
// requests, the port a server allocates when asked for port 0, and the table of forwardings
// one connection holds, which decides whether a `forwarded-tcpip` open (§7.2) is ours. Also
// OpenSSH's Unix-socket form of the same (PROTOCOL §2.4, "streamlocal"): a socket path on the
// server in place of address and port. Interop notes sit where each deviation is handled.

import { Reader, Writer } from './wire.js';

export const TCPIP_FORWARD = 'tcpip-forward';
export const CANCEL_TCPIP_FORWARD = 'cancel-tcpip-forward';

/** §7.1: the request-specific data of both requests: address to bind and port to bind. */
export const ForwardRequest = {
  encode(address: string, port: number): Uint8Array {
    return new Writer(16 + address.length * 3).string(address).uint32(port).finish();
  },
};

export const STREAMLOCAL_FORWARD = 'streamlocal-forward@openssh.com';
export const CANCEL_STREAMLOCAL_FORWARD = 'cancel-streamlocal-forward@openssh.com';
export const FORWARDED_STREAMLOCAL = 'forwarded-streamlocal@openssh.com';

/** PROTOCOL §2.4: the data of both streamlocal requests: the socket path. */
export const StreamLocalForwardRequest = {
  encode(socketPath: string): Uint8Array {
    return new Writer(8 + socketPath.length * 3).string(socketPath).finish();
  },
};

/**
 * PROTOCOL §2.4: the type-specific part of a `forwarded-streamlocal@openssh.com` open, the
 * socket path and a reserved string, as the connection it names: the path in place of the
 * address, every port 0, no origin (a Unix socket peer has no address to report). The
 * reserved field is optional here: OpenSSH sends an empty one, other servers may omit it.
 */
export const ForwardedStreamLocalData = {
  decode(data: Uint8Array) {
    const r = new Reader(data);
    const socketPath = r.utf8();
    if (r.remaining > 0) r.string();
    r.done('forwarded-streamlocal channel data');
    return { connectedAddress: socketPath, connectedPort: 0, originAddress: '', originPort: 0 };
  },
};

/**
 * The port a successful `tcpip-forward` reply grants, or null when the reply cannot be used.
 * §7.1 says the reply carries a port only when port 0 was asked for; some servers (AsyncSSH,
 * some embedded ones) put the port in every reply, and for a fixed port it is ignored, as
 * OpenSSH's client does. A port-0 reply without a usable port fails that request only.
 */
export function grantedPort(requestedPort: number, replyData: Uint8Array): number | null {
  if (requestedPort !== 0) return requestedPort;
  const r = new Reader(replyData);
  const reported = r.remaining >= 4 ? r.uint32() : 0;
  return reported >= 1 && reported <= 65535 ? reported : null;
}

/** One forwarding the server has agreed to on this connection. */
export interface Grant {
  /** The bind address as we sent it ('' and 'localhost' are the server's to interpret). */
  address: string;
  /** The port we asked for (0: the server picked `boundPort`). */
  requestedPort: number;
  boundPort: number;
  /** A streamlocal forwarding: `address` is the socket path on the server, both ports 0. */
  streamLocal?: true;
}

/**
 * The forwardings of one connection. A `forwarded-tcpip` open names the address and port the
 * connection arrived on; servers report the address as requested, but some normalise it
 * (OpenSSH reports '' as '0.0.0.0' on some builds, 'localhost' as '127.0.0.1' on others), so
 * the port alone decides when no forwarding has that exact address.
 */
export class ForwardingGrants {
  private readonly grants: Grant[] = [];

  add(grant: Grant): void {
    this.grants.push(grant);
  }

  remove(grant: Grant): void {
    const index = this.grants.indexOf(grant);
    if (index >= 0) this.grants.splice(index, 1);
  }

  /** The grant cancel-tcpip-forward refers to: address as requested, port as requested or bound. */
  named(address: string, port: number): Grant | undefined {
    return this.grants.find((g) => g.address === address && (g.boundPort === port || (port !== 0 && g.requestedPort === port)));
  }

  /** The grant an incoming forwarded-tcpip open belongs to. */
  match(connectedAddress: string, connectedPort: number): Grant | undefined {
    const tcp = this.grants.filter((g) => !g.streamLocal);
    return tcp.find((g) => g.boundPort === connectedPort && g.address === connectedAddress) ?? tcp.find((g) => g.boundPort === connectedPort);
  }

  /** The grant an incoming forwarded-streamlocal open belongs to: the path exactly as requested. */
  matchSocket(socketPath: string): Grant | undefined {
    return this.grants.find((g) => g.streamLocal && g.address === socketPath);
  }

  get list(): readonly Grant[] {
    return this.grants;
  }
}
