// Loading uWebSockets.js, refusing its JavaScript fallback.
//
// The package (npm alias of @trufflesuite/uws-js-unofficial) tries its native binary and, if that fails to
// load (wrong Node ABI, libc, platform) or UWS_USE_FALLBACK is set, silently returns a Node-based server
// with the same App API that is several times slower and lacks parts of it. A data plane on the fallback
// would look healthy and miss every throughput target, so we fail at start instead. The fallback exports
// only App, us_listen_socket_close, us_socket_local_port and _cfg; the native binary also exports SSLApp,
// getParts and the LIBUS_LISTEN_* constants, which is what we check.
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';
import { DirigentError } from '../../actors/errors.js';

export type UwsModule = typeof Uws;

export class UwsNotNativeError extends DirigentError<'UWS_NOT_NATIVE'> {
  override name = 'UwsNotNativeError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('UWS_NOT_NATIVE', message, options);
  }
}

let loaded: UwsModule | undefined;

/** The native uWebSockets.js module; throws UWS_NOT_NATIVE when only the JavaScript fallback loads. */
export function loadNativeUws(): UwsModule {
  if (loaded) return loaded;
  const uws = createRequire(import.meta.url)('uWebSockets.js') as UwsModule & Record<string, unknown>;
  if (!isNative(uws)) {
    const forced = ['true', 'True', 'TRUE', '1'].includes(process.env.UWS_USE_FALLBACK ?? '');
    throw new UwsNotNativeError(
      forced
        ? 'uWebSockets.js runs its JavaScript fallback because UWS_USE_FALLBACK is set; unset it (the data plane needs the native server)'
        : `uWebSockets.js could not load its native binary for node ${process.versions.node} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}) and fell back to a slow JavaScript server; the data plane refuses to run on it`,
    );
  }
  loaded = uws;
  return uws;
}

function isNative(uws: Record<string, unknown>): boolean {
  return typeof uws.getParts === 'function' && typeof uws.SSLApp === 'function' && typeof uws.LIBUS_LISTEN_EXCLUSIVE_PORT === 'number';
}
