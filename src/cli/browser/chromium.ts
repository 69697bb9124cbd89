/**
 * Debian's Chromium, driven through playwright-core with WebGPU on, on one of two software adapters:
 *   swiftshader  /usr/bin/chromium as installed (its bundled SwiftShader Vulkan; no shader-f16)
 *   lavapipe     the mirror that scripts/setup-chromium-lavapipe.sh builds: Mesa lavapipe (shader-f16, many times
 *                faster on a CPU), reported to Chromium under SwiftShader's PCI ids by a small Vulkan layer
 * Chromium is never downloaded.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type LaunchOptions } from 'playwright-core';
import { BrowserSetupError } from '../../errors.ts';

export type BrowserAdapter = 'swiftshader' | 'lavapipe';
export const BROWSER_ADAPTERS: BrowserAdapter[] = ['swiftshader', 'lavapipe'];

export const CHROMIUM = process.env.LLAMA_WEBGPU_CHROMIUM ?? '/usr/bin/chromium';
/** Where scripts/setup-chromium-lavapipe.sh (run by scripts/setup-system.sh) builds Chromium on lavapipe. */
export const CHROMIUM_LAVAPIPE_DIR = process.env.LLAMA_WEBGPU_CHROMIUM_LAVAPIPE ?? '/opt/llama-webgpu-chromium-lavapipe';
const LAVAPIPE_ICDS = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'];
const SPOOF_LAYER = 'VK_LAYER_WLLAMA_spoof_swiftshader';

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Why Chromium on `adapter` cannot be launched here, or null when it can. */
export function chromiumProblem(adapter: BrowserAdapter = 'swiftshader'): string | null {
  if (!existsSync(CHROMIUM)) return `Chromium not found at ${CHROMIUM} (run scripts/setup-system.sh)`;
  if (adapter === 'lavapipe') {
    const exe = path.join(CHROMIUM_LAVAPIPE_DIR, 'chromium/chromium');
    const layer = path.join(CHROMIUM_LAVAPIPE_DIR, 'layer/libVkLayer_spoof_swiftshader.so');
    if (!existsSync(exe) || !existsSync(layer)) {
      return `Chromium on lavapipe not found in ${CHROMIUM_LAVAPIPE_DIR} (run scripts/setup-system.sh, which builds it with scripts/setup-chromium-lavapipe.sh)`;
    }
    if (!LAVAPIPE_ICDS.some((f) => existsSync(f))) return `Mesa lavapipe's Vulkan driver not found (${LAVAPIPE_ICDS.join(' or ')}; run scripts/setup-system.sh)`;
  }
  return null;
}

/** playwright launch options for Chromium with WebGPU on `adapter`; throws BrowserSetupError when it is not installed. */
export function chromiumLaunchOptions(adapter: BrowserAdapter = 'swiftshader', options: { webgpu?: boolean } = {}): LaunchOptions {
  const problem = chromiumProblem(adapter);
  if (problem) throw new BrowserSetupError(`${problem}.`);
  const args = options.webgpu === false ? CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu') : [...CHROMIUM_ARGS];
  if (adapter === 'swiftshader') return { executablePath: CHROMIUM, args, headless: true };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^VK_(ADD_)?DRIVER_FILES$/.test(k)) env[k] = v;
  Object.assign(env, {
    VK_ICD_FILENAMES: LAVAPIPE_ICDS.find((f) => existsSync(f))!,
    VK_LAYER_PATH: path.join(CHROMIUM_LAVAPIPE_DIR, 'layer'),
    VK_INSTANCE_LAYERS: SPOOF_LAYER,
    SPOOF_LAYER_QUIET: '1',
  });
  // With ANGLE on its default GL backend this Chromium offers no WebGPU adapter on lavapipe; ANGLE on Vulkan does.
  return { executablePath: path.join(CHROMIUM_LAVAPIPE_DIR, 'chromium/chromium'), args: [...args, '--use-angle=vulkan'], env, headless: true };
}

export function launchChromium(adapter: BrowserAdapter = 'swiftshader', options: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch(chromiumLaunchOptions(adapter, options));
}

/**
 * Chromium with a profile on disk in `userDataDir`, as a browser a person runs: its IndexedDB quota is a share of
 * the disk. (browser.newPage() opens a private context, whose storage lives in memory with a quota of a few GB.)
 */
export function launchChromiumProfile(userDataDir: string, adapter: BrowserAdapter = 'swiftshader'): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, chromiumLaunchOptions(adapter));
}
