/**
 * `llama-webgpu/node` (and what Node gets for `llama-webgpu`, through the package's "node" export condition): the
 * whole public API, plus the Node pieces a browser bundle must never see. Models live in a directory
 * (createFsStore); the engine runs on Dawn from the optional peer dependency `webgpu` (`npm install webgpu`).
 */
export * from './index.ts';
export { createFsStore } from './storage/fs-store.ts';
export { createNodeGpu } from './gpu/node.ts';
export type { NodeAdapterName } from './gpu/node.ts';
/** The CLI's Chromium launcher (bench-browser, test/browser) is not set up. */
export { BrowserSetupError } from './errors.ts';
