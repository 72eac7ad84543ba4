// Public entry point of the revtun package.

export { SSHReverseTunnel, SshAuthMode, SshCertStoreType } from './tunnel/tunnel.js';
export type { SshChannelInfo, SshAuthModeValue, SshCertStoreTypeValue, SshIdentity, TunnelScheduler } from './tunnel/tunnel.js';
export { AutoReconnect } from './tunnel/reconnect.js';
export type { JumpHost, JumpHostKeyInfo } from './tunnel/jump.js';
export type { DynamicForwardingOptions } from './tunnel/socks-forward.js';
export type * from './tunnel/events.js';
export { openReverseTunnel } from './tunnel/open.js';
export { createMetrics, tunnelHealth, type TunnelMetrics, type TunnelMetricsOptions, type TunnelHealth } from './tunnel/metrics.js';
export { serveMetrics, type MetricsServer, type ServeMetricsOptions } from './tunnel/metrics-server.js';
export type { ChannelByteTotals } from './tunnel/traffic.js';
export type { OpenReverseTunnelOptions, OpenedReverseTunnel } from './tunnel/open.js';
export type { SocketOptionValues } from './net/socket-options.js';
export { SshError, Code, type ErrorCode, type ErrorOrigin } from './protocol/errors.js';
export type { CryptoProvider, PacketSealer, PacketOpener } from './crypto/provider.js';
export { NodeCryptoProvider } from './crypto/node.js';
export { CoreCryptoProvider } from './crypto/core.js';
export { loadCryptoProvider, defaultCryptoProvider, automaticCryptoProvider, type CryptoProviderName } from './crypto/select.js';
export { SshClientCore } from './protocol/client.js';
export type { ClientEvent, ClientOptions, HostCertificateInfo, HostKeyInfo, X509HostKeyInfo } from './protocol/client.js';
export {
  benchmarkCrypto,
  resolveCryptoBenchmark,
  buildBenchmarkPacket,
  DEFAULT_BENCHMARK_ALGORITHMS,
  DEFAULT_BENCHMARK_MAC,
  DEFAULT_BENCHMARK_PROVIDERS,
  DEFAULT_BENCHMARK_SIZES,
  BENCHMARK_PROVIDER_NAMES,
  BENCHMARK_SIZE_LIMITS,
  BENCHMARK_MAX_SECONDS,
  type BenchmarkAlgorithm,
  type BenchmarkCryptoOptions,
  type BenchmarkProviderName,
  type BenchmarkRow,
  type CryptoBenchmarkPlan,
  type CryptoBenchmarkResult,
  type UnavailableBenchmarkProvider,
} from './crypto/benchmark.js';
