// The documented firewall properties (firewallType, firewallHost, firewallPort, firewallUser,
// firewallPassword, firewallAutoDetect) as views of the Firewall* settings, so that a proxy set
// either way is one value with one validation: assigning a property goes through config(), and
// a bad value throws the same 10022. firewallPassword reads back the password itself, as
// sshPassword does; only config('FirewallPassword') is masked (MaskSensitiveData).

interface SettingAccess {
  config(setting: string): string;
  /** @internal The parsed value of a setting, unmasked. */
  settingValue<T extends boolean | number | string>(name: string): T;
}

export interface FirewallProperties {
  /** 0 none, 1 HTTP CONNECT, 2 SOCKS4, 3 SOCKS5, 10 SOCKS4A; setting it sets firewallPort to the type's port. */
  firewallType: number;
  firewallHost: string;
  /** 0: the type's default port. */
  firewallPort: number;
  firewallUser: string;
  firewallPassword: string;
  /** Take the proxy from https_proxy / all_proxy / no_proxy. */
  firewallAutoDetect: boolean;
}

const FIREWALL_PROPERTIES: Record<keyof FirewallProperties, string> = {
  firewallType: 'FirewallType',
  firewallHost: 'FirewallHost',
  firewallPort: 'FirewallPort',
  firewallUser: 'FirewallUser',
  firewallPassword: 'FirewallPassword',
  firewallAutoDetect: 'FirewallAutoDetect',
};

function asSettingText(value: unknown): string {
  return typeof value === 'boolean' ? (value ? 'True' : 'False') : String(value);
}

export function installFirewallProperties(prototype: SettingAccess): void {
  for (const [property, setting] of Object.entries(FIREWALL_PROPERTIES)) {
    Object.defineProperty(prototype, property, {
      get(this: SettingAccess) {
        return this.settingValue(setting);
      },
      set(this: SettingAccess, value: unknown) {
        this.config(`${setting}=${asSettingText(value)}`);
      },
      enumerable: false,
      configurable: true,
    });
  }
}

export const FIREWALL_PROPERTY_NAMES = Object.keys(FIREWALL_PROPERTIES) as (keyof FirewallProperties)[];
