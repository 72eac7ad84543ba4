// What the client core needs of a native data plane once a connection is handed over to it
// (ts/net/data-plane.ts implements it over the addon). The core stays sans-IO: it frames
// nothing itself any more, it hands payloads and keys to the port, and it is fed the
// payloads the plane passes up (SshClientCore.receivePayload).

import type { DirectionKeys } from '../crypto/provider.js';

export interface PlanePort {
  /** Frames and sends a control payload; returns its sequence number (-1: held for a key exchange). */
  send(payload: Uint8Array): number;
  /** Frames our NEWKEYS under the old keys and switches to `keys` after it (strict kex: `resetSequence`). */
  sendNewKeys(keys: DirectionKeys, resetSequence: boolean): void;
  /** The incoming keys that follow the server's NEWKEYS. */
  setIncomingKeys(keys: DirectionKeys, resetSequence: boolean): void;
  /** Our packet limit and the window each channel is refilled to (it changes with the channel count). */
  setLimits(maxPacket: number, windowTarget: number): void;
  /**
   * Takes an accepted channel over and sends our `confirmation` of it in the same step: no
   * data for it can arrive before the plane has it, and none of its own leaves before the
   * confirmation.
   */
  adopt(channel: number, remoteId: number, localWindow: number, remoteWindow: number, remoteMaxPacket: number, confirmation: Uint8Array): void;
  /** Closes an adopted channel (EOF and CLOSE from the plane, after what it holds for the local socket). */
  closeChannel(channel: number): void;
  /** An adopted channel's payload bytes each way so far (null once it is not the plane's). */
  channelStats(channel: number): { bytesSent: number; bytesReceived: number } | null;
}

/** Everything a handover needs from the core. */
export interface CoreHandover {
  outgoing: DirectionKeys;
  incoming: DirectionKeys;
  sendSequence: number;
  receiveSequence: number;
  maxPacket: number;
  windowTarget: number;
  rekeyBytes: number;
  /** Bytes received and not yet taken as packets (the start of the next one). */
  input: Uint8Array;
}
