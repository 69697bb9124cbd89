/** Whether this browser can run models, and in words why not, with the fix that applies to this browser. */
export type GpuCheck = { ok: true; adapter: string } | { ok: false; message: string };

export type Platform = 'windows' | 'mac' | 'linux' | 'chromeos' | 'android' | 'ios' | 'other';
export type BrowserName = 'chrome' | 'edge' | 'firefox' | 'safari' | 'other';

/** The platform and browser a user agent string names (Edge and other Chromium browsers say "Chrome" too). */
export function detectBrowser(userAgent: string): { platform: Platform; browser: BrowserName } {
  const ua = userAgent;
  const platform: Platform = /Android/.test(ua)
    ? 'android'
    : /iPhone|iPad|iPod/.test(ua)
      ? 'ios'
      : /CrOS/.test(ua)
        ? 'chromeos'
        : /Windows/.test(ua)
          ? 'windows'
          : /Macintosh|Mac OS X/.test(ua)
            ? 'mac'
            : /Linux|X11/.test(ua)
              ? 'linux'
              : 'other';
  const browser: BrowserName = /Edg\//.test(ua)
    ? 'edge'
    : /Firefox\//.test(ua)
      ? 'firefox'
      : /Chrome\/|Chromium\/|CriOS\//.test(ua)
        ? 'chrome'
        : /Safari\//.test(ua)
          ? 'safari'
          : 'other';
  return { platform, browser };
}

const MANAGE = 'Models can still be installed and managed here.';

/**
 * What to do when WebGPU is missing (`reason: 'no-api'`: navigator.gpu does not exist) or present without a usable
 * GPU (`'no-adapter'`), for this platform and browser. Chrome on Linux ships WebGPU behind a flag, so there the fix
 * is chrome://flags, not the hardware-acceleration setting that helps on Windows and macOS.
 */
export function webGpuAdvice(reason: 'no-api' | 'no-adapter', platform: Platform, browser: BrowserName): string {
  const chromium = browser === 'chrome' || browser === 'edge';
  const flags = browser === 'edge' ? 'edge://flags' : 'chrome://flags';
  const head =
    reason === 'no-api' ? 'WebGPU is not available in this browser, so models cannot run here.' : 'This browser has WebGPU but found no usable GPU, so models cannot run here.';
  let fix: string;
  if (chromium && platform === 'linux') {
    fix =
      `On Linux, ${browser === 'edge' ? 'Edge' : 'Chrome'} keeps WebGPU behind a flag: open ${flags}/#enable-unsafe-webgpu, set it to Enabled, ` +
      `and relaunch the browser${reason === 'no-adapter' ? ' (if it is already on, also enable ' + flags + '/#enable-vulkan)' : ''}.`;
  } else if (chromium && platform === 'android') {
    fix = 'On Android, WebGPU needs Chrome 121 or later on Android 12 or later with a recent GPU; update Chrome, or use a desktop computer.';
  } else if (chromium && reason === 'no-api') {
    fix = `Update ${browser === 'edge' ? 'Edge' : 'Chrome'} to version 113 or later.`;
  } else if (chromium) {
    fix =
      `Turn on "Use graphics acceleration when available" in the browser's settings (System), relaunch, and update the GPU driver; ` +
      `${flags.replace('flags', 'gpu')} shows whether WebGPU is blocked.`;
  } else if (browser === 'firefox') {
    fix = 'Update Firefox; where WebGPU is not yet on by default, set dom.webgpu.enabled to true in about:config and restart Firefox, or use Chrome or Edge.';
  } else if (browser === 'safari' || platform === 'ios') {
    fix =
      platform === 'ios'
        ? 'Update to iOS 26 or later, or on iOS 18 turn on WebGPU under Settings > Apps > Safari > Advanced > Feature Flags.'
        : 'Update to Safari 26 or later, or on Safari 18 turn on WebGPU under Develop > Feature Flags.';
  } else {
    fix = 'Use a recent Chrome or Edge (version 113 or later), or Safari 26 or later.';
  }
  return `${head} ${fix} ${MANAGE}`;
}

export async function checkWebGpu(): Promise<GpuCheck> {
  if (!window.isSecureContext) {
    return { ok: false, message: `WebGPU needs a secure page: open this app over https:// or from localhost. ${MANAGE}` };
  }
  const { platform, browser } = detectBrowser(navigator.userAgent);
  if (!('gpu' in navigator) || !navigator.gpu) return { ok: false, message: webGpuAdvice('no-api', platform, browser) };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    adapter = null;
  }
  if (!adapter) return { ok: false, message: webGpuAdvice('no-adapter', platform, browser) };
  const i = adapter.info;
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unnamed adapter';
  return { ok: true, adapter: `WebGPU: ${name}${adapter.features.has('shader-f16') ? ', shader-f16' : ''}` };
}
