// A network namespace joined to this one by a veth pair: hosts inside it are reached at
// `inside`, and what listens on the namespace's own loopback is out of this namespace's
// reach altogether, which is how the jump-host tests prove a target is reached only through
// a jump host. Needs root (the tests run as root, as CI does).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';

export interface Netns {
  readonly name: string;
  /** This namespace's end of the veth pair. */
  readonly outside: string;
  /** The namespace's end. */
  readonly inside: string;
  /** Runs a command inside the namespace. */
  spawn(command: string, args: string[]): ChildProcess;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

export function createNetns(): Netns {
  // Test files run in parallel, each process with namespaces of its own: a random subnet,
  // retried if taken. The veth pair is named after the subnet alone, so that creating it
  // claims the subnet machine-wide (a second `ip link add` of the name fails): two pairs on
  // one subnet would route each other's traffic (seen on CI as ECONNREFUSED from a jump host
  // that was running).
  for (let attempt = 0; ; attempt++) {
    const n = randomInt(1, 250);
    const name = `revtun-ns${process.pid % 10000}-${n}`;
    const host = `rtv${n}h`;
    const peer = `rtv${n}n`;
    try {
      ip('netns', 'add', name);
    } catch (error) {
      if (attempt < 20) continue;
      throw error;
    }
    const outside = `10.211.${n}.1`;
    const inside = `10.211.${n}.2`;
    try {
      ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    } catch (error) {
      ip('netns', 'del', name); // the subnet is another namespace's
      if (attempt < 20) continue;
      throw error;
    }
    try {
      ip('link', 'set', peer, 'netns', name);
      ip('addr', 'add', `${outside}/24`, 'dev', host);
      ip('link', 'set', host, 'up');
      ip('netns', 'exec', name, 'ip', 'addr', 'add', `${inside}/24`, 'dev', peer);
      ip('netns', 'exec', name, 'ip', 'link', 'set', peer, 'up');
      ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
    } catch (error) {
      try {
        ip('link', 'del', host);
      } catch {
        /* not created */
      }
      ip('netns', 'del', name);
      if (attempt < 20) continue;
      throw error;
    }
    return {
      name,
      outside,
      inside,
      spawn: (command, args) => spawn('ip', ['netns', 'exec', name, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }),
      remove: () => {
        try {
          ip('link', 'del', host); // takes the namespace's end with it
        } catch {
          /* already gone */
        }
        ip('netns', 'del', name);
      },
    };
  }
}

/** Connects to host:port inside the namespace, sends `input`, and resolves with what came back before the peer closed. */
export function exchangeInside(ns: Netns, host: string, port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn('nc', ['-N', '-w', '10', host, String(port)]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`nc exited with ${code}: ${err}`))));
    child.stdin!.end(input);
  });
}
