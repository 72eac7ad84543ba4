// The remote forwardings requested on one connection and the channels the server opened for
// them: which forwarding an incoming connection belongs to, and, in local forwarding mode,
// the LocalForwarder joining each channel to its target.

import { LocalForwarder, type ForwarderHost } from './local-forward.js';

export interface Forwarding {
  address: string;
  requestedPort: number;
  boundPort: number;
  /** Empty in event mode. */
  forwardingHost: string;
  forwardingPort: number;
}

export class ForwardingTable {
  private readonly forwardings: Forwarding[] = [];
  private readonly byChannel = new Map<number, Forwarding>();
  private readonly forwarders = new Map<number, LocalForwarder>();

  add(forwarding: Forwarding): void {
    this.forwardings.push(forwarding);
  }

  /** The forwarding cancelForwarding(address, port) names (port as requested or as bound). */
  named(address: string, port: number): Forwarding | undefined {
    return this.forwardings.find((f) => f.address === address && (f.boundPort === port || f.requestedPort === port));
  }

  remove(forwarding: Forwarding): void {
    const index = this.forwardings.indexOf(forwarding);
    if (index >= 0) this.forwardings.splice(index, 1);
  }

  /**
   * The forwarding a forwarded-tcpip open belongs to. Servers report the address as given in
   * the request, but some normalise it, so the port alone decides when the address differs.
   */
  match(connectedAddress: string, connectedPort: number): Forwarding | undefined {
    return (
      this.forwardings.find((f) => f.boundPort === connectedPort && f.address === connectedAddress) ??
      this.forwardings.find((f) => f.boundPort === connectedPort)
    );
  }

  forChannel(channel: number): Forwarding | undefined {
    return this.byChannel.get(channel);
  }

  forwarder(channel: number): LocalForwarder | undefined {
    return this.forwarders.get(channel);
  }

  /** Records an accepted channel; in local forwarding mode also connects it to its target. */
  attach(channel: number, forwarding: Forwarding, bindHost: string, host: ForwarderHost): void {
    this.byChannel.set(channel, forwarding);
    if (!forwarding.forwardingHost) return;
    const forwarder = new LocalForwarder(channel, { host: forwarding.forwardingHost, port: forwarding.forwardingPort, bindHost }, host);
    this.forwarders.set(channel, forwarder);
    forwarder.start();
  }

  /** Forgets a channel, dropping its local connection once pending bytes are written. */
  detach(channel: number): void {
    this.forwarders.get(channel)?.destroy();
    this.forwarders.delete(channel);
    this.byChannel.delete(channel);
  }

  /** Drops every channel (the connection is gone); the forwardings stay listed. */
  detachAll(): void {
    for (const channel of [...this.byChannel.keys(), ...this.forwarders.keys()]) this.detach(channel);
  }

  clear(): void {
    this.detachAll();
    this.forwardings.length = 0;
  }
}
