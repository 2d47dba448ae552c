// Run in the Dockerfile's build stage, after `npm prune --omit=dev`, from the folder holding node_modules: removes what the runtime image does not
// need from the production dependencies. uWebSockets.js ships native binaries for 18 platform/ABI pairs
// (~113 MB) and loads exactly one, binaries/uws_<platform>_<arch>_<ABI>.node; the copies in its dist/ are
// never loaded. Keeps that one binary and fails the build when it is missing or does not load natively
// (the data plane refuses uWebSockets.js's JavaScript fallback at start anyway: better to fail here).
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = 'node_modules/uWebSockets.js';
const keep = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
if (!existsSync(join(root, 'binaries', keep))) throw new Error(`uWebSockets.js has no binary ${keep} for this platform and Node version`);
let removed = 0;
for (const folder of ['binaries', 'dist']) {
  for (const file of readdirSync(join(root, folder))) {
    if (!file.endsWith('.node') || (folder === 'binaries' && file === keep)) continue;
    rmSync(join(root, folder, file));
    removed += 1;
  }
}
// Type declarations that production dependencies pull in (etcd3's gRPC stack depends on @types/*): never
// loaded at run time (~2.4 MB).
rmSync('node_modules/@types', { recursive: true, force: true });
// npm prune leaves the scope folders of removed packages behind, empty.
for (const entry of readdirSync('node_modules')) {
  if (entry.startsWith('@') && readdirSync(join('node_modules', entry)).length === 0) rmSync(join('node_modules', entry), { recursive: true });
}
const uws = createRequire(import.meta.url)(resolve(root, 'binaries', keep));
if (typeof uws.App !== 'function') throw new Error(`${keep} did not load as the native uWebSockets.js`);
console.log(`image-prune: kept ${keep}, removed ${removed} other uWebSockets.js binaries and the @types declarations`);
