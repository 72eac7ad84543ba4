// Turns the core events of one session into the documented SSHReverseTunnel events: a
// forwarded connection becomes sshChannelOpenRequest (then a local forwarder, or events),
// channel data becomes sshChannelData records, the close becomes disconnected. The session has
// already done its own bookkeeping for each event (waiters, forwarders) when it arrives here.

import type { ClientEvent } from '../protocol/client.js';
import type { ChannelOpenRequestEvent, TunnelEvents } from './events.js';
import type { ChannelRecords } from './chunker.js';
import type { Session } from './session.js';
import { isSocketPath } from './local-forward.js';
import { DEFAULT_SOCKS_HANDSHAKE_TIMEOUT } from './socks-forward.js';
import { PERMIT_ANY } from './permit-open.js';
import type { TunnelScheduler } from './timing.js';

export interface TranslatorHost {
  emit<K extends keyof TunnelEvents & string>(event: K, ...args: TunnelEvents[K]): void;
  log(level: 1 | 2 | 3, message: string): void;
  /** ForwardingLocalHost: the address local forwarders bind to. */
  forwardingLocalHost(): string;
  /** The tunnel's clock, for the SOCKS handshake deadline. */
  scheduler(): TunnelScheduler;
  readonly records: ChannelRecords;
  /** The record sshChannelData is delivering right now (ChannelDataEOLFound[id] reads it), or null. */
  delivering: { channel: number; eolFound: boolean } | null;
  /** The last keep-alive's round trip (ms); null until one has been answered. */
  keepAliveRoundTripMs: number | null;
}

export class EventTranslator {
  constructor(
    private readonly session: Session,
    private readonly host: TranslatorHost,
  ) {}

  handle(event: ClientEvent): void {
    const host = this.host;
    switch (event.type) {
      case 'log':
        host.log(event.level, event.message);
        return;
      case 'status':
        host.emit('sshStatus', { message: event.message });
        return;
      case 'serverVersion':
        return;
      case 'banner':
        host.log(1, `server banner: ${event.text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ')}`);
        return;
      case 'keysExchanged': {
        if (event.initial) host.emit('connectionStatus', { connectionEvent: 'SSH handshake complete.', statusCode: 0, description: 'OK' });
        const { strictKex: _strict, serverWantsExtInfo: _extInfo, ...algorithms } = event.negotiated;
        host.emit('keyExchange', { initial: event.initial, byServer: !event.initial && event.startedBy === 'server', ...algorithms });
        return;
      }
      case 'keepAliveAnswered':
        host.keepAliveRoundTripMs = event.roundTripMs;
        host.emit('keepAlive', { roundTripMs: event.roundTripMs });
        return;
      case 'authenticated':
      case 'closed': // the tunnel hears of it from the session first
        return;
      case 'channelOpenRequest':
        this.openRequest(event);
        return;
      case 'channelOpened':
        host.emit('sshChannelOpened', { channelId: event.channel });
        return;
      case 'channelData': {
        // The core's views are plain Uint8Arrays when a packet joined two reads; hand out a
        // Buffer (a view, not a copy) either way, as sockets and applications expect.
        const data = event.data;
        const view = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
        const forwarder = this.session.forwarder(event.channel);
        if (forwarder) {
          forwarder.write(view);
          return;
        }
        this.session.keepInput(); // the application may hold on to what it is given
        // (A listener that throws is caught by the tunnel's emitter: every record is delivered.)
        try {
          for (const record of host.records.push(event.channel, view)) this.deliver(event.channel, record.data, record.eolFound);
        } finally {
          // Records wait in a buffer bounded by MaxChannelDataLength, so credit is returned now.
          this.session.core.consume(event.channel, view.length);
        }
        return;
      }
      case 'channelEof':
        this.flushRecords(event.channel);
        host.emit('sshChannelEOF', { channelId: event.channel });
        return;
      case 'channelClosed':
        this.flushRecords(event.channel);
        host.records.forget(event.channel);
        host.emit('sshChannelClosed', { channelId: event.channel, bytesSent: event.bytesSent, bytesReceived: event.bytesReceived });
        return;
      case 'channelWritable':
        host.emit('sshChannelReadyToSend', { channelId: event.channel });
        return;
      case 'channelRequest': {
        const request = { channelId: event.channel, requestType: event.requestType, requestData: event.data, success: false };
        host.emit('sshChannelRequest', request);
        if (event.wantReply) this.session.core.replyChannelRequest(event.channel, request.success);
        if (request.success) host.emit('sshChannelRequested', { channelId: event.channel, requestType: event.requestType, requestData: event.data });
        return;
      }
    }
  }

  private openRequest(event: Extract<ClientEvent, { type: 'channelOpenRequest' }>): void {
    const core = this.session.core;
    // The core accepts opens only for its grants, and every grant serves a request.
    const forwarding = this.session.forwardingFor(event.service, event.connectedAddress, event.connectedPort);
    if (!forwarding) {
      core.rejectChannel(event.channel, 1, 'no such forwarding was requested');
      return;
    }
    const request: ChannelOpenRequestEvent = {
      channelId: event.channel,
      service: event.service,
      connectedAddress: event.connectedAddress,
      connectedPort: event.connectedPort,
      originAddress: event.originAddress,
      originPort: event.originPort,
      accept: true,
    };
    this.host.emit('sshChannelOpenRequest', request);
    if (!request.accept) {
      core.rejectChannel(event.channel, 1, 'refused by the application');
      return;
    }
    this.session.noteChannel(event.channel, forwarding);
    // Event mode and SOCKS accept now; a local forwarder accepts once its target connection is up.
    if (forwarding.dynamic) {
      this.session.attachSocksForwarder(event.channel, {
        bindHost: this.host.forwardingLocalHost(),
        permitOpen: forwarding.socks?.permitOpen ?? PERMIT_ANY,
        handshakeTimeout: forwarding.socks?.handshakeTimeout ?? DEFAULT_SOCKS_HANDSHAKE_TIMEOUT,
        scheduler: this.host.scheduler(),
      });
      return;
    }
    if (!forwarding.forwardingHost) {
      core.acceptChannel(event.channel);
      return;
    }
    this.session.attachForwarder(
      event.channel,
      isSocketPath(forwarding.forwardingHost)
        ? { kind: 'unix', path: forwarding.forwardingHost }
        : { kind: 'tcp', host: forwarding.forwardingHost, port: forwarding.forwardingPort, bindHost: this.host.forwardingLocalHost() },
    );
  }

  private deliver(channelId: number, channelData: Uint8Array, channelDataEOLFound: boolean): void {
    this.host.delivering = { channel: channelId, eolFound: channelDataEOLFound };
    try {
      this.host.emit('sshChannelData', { channelId, channelData, channelDataEOLFound });
    } finally {
      this.host.delivering = null;
    }
  }

  /** Delivers what a record chunker still holds when its channel ends. */
  private flushRecords(channel: number): void {
    const rest = this.host.records.flush(channel);
    if (rest) this.deliver(channel, rest.data, false);
  }
}
