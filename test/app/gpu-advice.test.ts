/** The page's advice when WebGPU is missing (src/app/gpu-check.ts): the fix that applies to each platform and browser. */
import { describe, expect, test } from 'vitest';
import { detectBrowser, webGpuAdvice } from '../../src/app/gpu-check.ts';

const UA = {
  linuxChrome: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36',
  windowsEdge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0',
  macSafari: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36',
  linuxFirefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0',
};

describe('WebGPU advice', () => {
  test('tells platform and browser apart from the user agent', () => {
    expect(detectBrowser(UA.linuxChrome)).toEqual({ platform: 'linux', browser: 'chrome' });
    expect(detectBrowser(UA.windowsEdge)).toEqual({ platform: 'windows', browser: 'edge' });
    expect(detectBrowser(UA.macSafari)).toEqual({ platform: 'mac', browser: 'safari' });
    expect(detectBrowser(UA.iphone)).toEqual({ platform: 'ios', browser: 'safari' });
    expect(detectBrowser(UA.android)).toEqual({ platform: 'android', browser: 'chrome' });
    expect(detectBrowser(UA.linuxFirefox)).toEqual({ platform: 'linux', browser: 'firefox' });
  });

  test('Chrome on Linux is told about the WebGPU flag, not hardware acceleration', () => {
    for (const reason of ['no-api', 'no-adapter'] as const) {
      const text = webGpuAdvice(reason, 'linux', 'chrome');
      expect(text).toContain('chrome://flags/#enable-unsafe-webgpu');
      expect(text).not.toMatch(/hardware acceleration|graphics acceleration/i);
    }
  });

  test('Chrome and Edge elsewhere: update, or turn graphics acceleration on when no GPU is found', () => {
    expect(webGpuAdvice('no-api', 'windows', 'edge')).toContain('Update Edge to version 113 or later.');
    const noAdapter = webGpuAdvice('no-adapter', 'windows', 'chrome');
    expect(noAdapter).toContain('Use graphics acceleration when available');
    expect(noAdapter).toContain('chrome://gpu');
    expect(noAdapter).not.toContain('flags');
  });

  test('Safari, Firefox and Android get their own fix, and every message says models can still be managed', () => {
    expect(webGpuAdvice('no-api', 'mac', 'safari')).toContain('Safari 26 or later');
    expect(webGpuAdvice('no-api', 'ios', 'safari')).toContain('iOS 26 or later');
    expect(webGpuAdvice('no-api', 'linux', 'firefox')).toContain('dom.webgpu.enabled');
    expect(webGpuAdvice('no-adapter', 'android', 'chrome')).toContain('Android 12');
    for (const platform of ['windows', 'mac', 'linux', 'android', 'ios', 'other'] as const) {
      for (const browser of ['chrome', 'edge', 'firefox', 'safari', 'other'] as const) {
        expect(webGpuAdvice('no-api', platform, browser)).toMatch(/Models can still be installed and managed here\.$/);
      }
    }
  });
});
