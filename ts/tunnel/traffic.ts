// Channel payload totals across every connection of a tunnel. Each connection's core counts
// its own; a reconnect starts a new core at zero, so the totals of the ones that ended are
// folded in here when the tunnel moves on, and the sum never goes backwards (what a
// Prometheus counter needs).

/** What the channel byte counters of one connection read. */
export interface ChannelByteSource {
  readonly channelBytes: Readonly<{ sent: number; received: number }>;
}

/** Channel payload bytes over the tunnel's life (SSHReverseTunnel.channelBytes), never going back at a reconnect. */
export interface ChannelByteTotals {
  /** Payload bytes sent to the server on every channel, over every connection. */
  sent: number;
  /** Payload bytes received from the server on every channel, over every connection. */
  received: number;
}

export class TrafficTotals {
  private finishedSent = 0;
  private finishedReceived = 0;
  private current: ChannelByteSource | null = null;

  /** The totals, given the connection in use now (null between connections). */
  read(now: ChannelByteSource | null): ChannelByteTotals {
    if (now !== this.current) {
      // The connection seen last has ended: its core's counts are final.
      if (this.current) {
        const last = this.current.channelBytes;
        this.finishedSent += last.sent;
        this.finishedReceived += last.received;
      }
      this.current = now;
    }
    const live = this.current?.channelBytes ?? { sent: 0, received: 0 };
    return { sent: this.finishedSent + live.sent, received: this.finishedReceived + live.received };
  }
}
