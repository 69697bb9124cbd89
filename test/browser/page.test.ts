/**
 * The chat page without a model: it loads cleanly, says clearly when WebGPU is missing, and after one online
 * visit its shell loads from the service worker with the network off.
 */
import { describe, expect, test } from 'vitest';
import path from 'node:path';
import { tinyConfig, writePackageDir } from '../helpers/package.ts';
import { haveChromium, openApp, useApp, watchErrors } from './harness.ts';

describe.skipIf(!haveChromium())('chat page shell in headless Chromium', () => {
  const session = useApp();

  test('loads with a WebGPU adapter, the sample models on offer and no errors', async () => {
    const context = await session.browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(session.app.url);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.title()).toBe('llama-webgpu chat');
    expect(await page.getAttribute('body', 'data-webgpu')).toBe('ok');
    expect(await page.textContent('#gpu-status')).toMatch(/^WebGPU: /);
    expect(await page.isHidden('#banner')).toBe(true);
    expect(await page.textContent('[data-sample="stories260K"]')).toBe('Install stories260K');
    expect(await page.textContent('#installed')).toContain('No models installed yet.');
    expect(await page.textContent('#storage')).toMatch(/Models use 0 B; this site stores .* of .* available\./);
    expect(await page.isDisabled('#send')).toBe(true);
    const manifest = await page.evaluate(async () => (await fetch('/manifest.webmanifest')).json());
    expect(manifest.name).toBe('llama-webgpu chat');
    expect(manifest.icons.some((i: { sizes: string }) => i.sizes === '512x512')).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a browser without WebGPU gets a clear message and can still manage models', async () => {
    const context = await session.browser.newContext();
    // As in a browser that ships no WebGPU: navigator.gpu does not exist.
    await context.addInitScript(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    const page = await openApp(context, session.app.url);
    expect(await page.getAttribute('body', 'data-webgpu')).toBe('missing');
    expect(await page.isVisible('#banner')).toBe(true);
    const banner = await page.textContent('#banner-text');
    expect(banner).toContain('WebGPU is not available in this browser');
    // Headless Chromium here runs on Linux, where Chrome's WebGPU is behind a flag.
    expect(banner).toContain('chrome://flags/#enable-unsafe-webgpu');
    expect(banner).not.toMatch(/hardware acceleration/i);
    expect(banner).toContain('Models can still be installed and managed here.');
    expect(await page.textContent('#gpu-status')).toBe('WebGPU unavailable');
    expect(await page.isDisabled('#send')).toBe(true);
    expect(await page.isVisible('[data-sample="stories260K"]')).toBe(true);
    await context.close();
  });

  test('WebGPU without a usable GPU gets the fix for the platform, and the advice can be dismissed', async () => {
    const windows = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';
    for (const [userAgent, expected, absent] of [
      [undefined, 'chrome://flags/#enable-unsafe-webgpu', /graphics acceleration/],
      [windows, 'Use graphics acceleration when available', /flags/],
    ] as const) {
      const context = await session.browser.newContext({ userAgent });
      // As on a machine whose GPU is blocklisted or has no driver: the API exists but finds no adapter.
      await context.addInitScript(() => {
        GPU.prototype.requestAdapter = async () => null;
      });
      const page = await openApp(context, session.app.url);
      expect(await page.getAttribute('body', 'data-webgpu')).toBe('missing');
      const banner = (await page.textContent('#banner-text')) ?? '';
      expect(banner).toMatch(/^This browser has WebGPU but found no usable GPU/);
      expect(banner).toContain(expected);
      expect(banner).not.toMatch(absent);
      await page.click('#banner-close');
      expect(await page.isHidden('#banner')).toBe(true);
      await context.close();
    }
  });

  test('a full storage quota gets a clear message and nothing is installed', async () => {
    const context = await session.browser.newContext();
    const page = await openApp(context, session.app.url);
    // Chromium's DevTools protocol can shrink this origin's quota, as on a nearly full disk.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(session.app.url).origin, quotaSize: 100_000 });
    await page.click('[data-sample="stories260K"]');
    await page.waitForSelector('#banner:not([hidden])', { timeout: 60_000 });
    const banner = (await page.textContent('#banner-text')) ?? '';
    // Depending on when the browser applies the quota, the install's own check or IndexedDB refuses the write.
    expect(banner).toMatch(/^Storage is full/);
    expect(banner).toMatch(/Delete (installed models you no longer need|a model in the model manager)/);
    expect(await page.textContent('#tasks')).toContain('Installing stories260K failed.');
    expect(await page.textContent('#installed')).toContain('No models installed yet.');
    await context.close();
  });

  test('a model that does not fit the GPU gets a clear message when it is loaded', async () => {
    // One layer so wide that the prefill's SwiGLU activation (64 tokens x hiddenDim x 4 bytes, 1.07 GB) exceeds
    // every binding limit WebGPU allows (SwiftShader's is 1 GiB), while the package itself stays about 50 MB.
    const config = tinyConfig({ dim: 2, nHeads: 1, nKvHeads: 1, hiddenDim: 4_200_000, nLayers: 1, vocabSize: 32 });
    await writePackageDir(path.join(session.app.packagesDir, 'too-wide'), config, { dtype: 'f16', name: 'too-wide' });
    const context = await session.browser.newContext();
    const page = await openApp(context, session.app.url);
    await page.fill('#url-input', new URL('models/too-wide/', session.app.url).href);
    await page.click('#url-form button[type="submit"]');
    await page.waitForSelector('[data-model-id="too-wide"]', { timeout: 120_000 });
    // The first installed model loads by itself, and the fit check refuses it before any weight is uploaded.
    await page.waitForSelector('#banner:not([hidden])', { timeout: 60_000 });
    const banner = (await page.textContent('#banner-text')) ?? '';
    expect(banner).toMatch(/^Model "too-wide" does not fit this GPU: An activation buffer needs [\d.]+ MiB, over this GPU's binding limit/);
    expect(banner).toContain('Choose a smaller or more strongly quantized model');
    expect(await page.textContent('#load-status')).toContain('Loading too-wide failed.');
    expect(await page.isDisabled('#send')).toBe(true);
    await context.close();
  });

  test('after one online visit the app shell loads offline from the service worker', async () => {
    const context = await session.browser.newContext();
    const page = await openApp(context, session.app.url);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
    });
    const cached = await page.evaluate(async () => {
      const keys = await caches.keys();
      const cache = await caches.open(keys.find((k) => k.startsWith('llama-webgpu-shell-'))!);
      return (await cache.keys()).map((r) => new URL(r.url).pathname);
    });
    expect(cached).toContain('/index.html');
    expect(cached).toContain('/manifest.webmanifest');
    expect(cached.some((p) => /\/assets\/engine-worker-.*\.js$/.test(p))).toBe(true);
    expect(cached.some((p) => /\/assets\/store-worker-.*\.js$/.test(p))).toBe(true);
    // Every script and style the page itself loaded is in the cache.
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname).filter((p) => p.startsWith('/assets/')));
    expect(loaded.length).toBeGreaterThan(0);
    for (const p of loaded) expect(cached, p).toContain(p);

    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('h1')).toBe('llama-webgpu');
    expect(await page.getAttribute('body', 'data-webgpu')).toBe('ok');
    expect(await page.textContent('#conversations')).toContain('No saved conversations yet.');
    // The server's sample list needs the network; offline it is simply not offered.
    expect(await page.locator('[data-sample]').count()).toBe(0);
    await context.setOffline(false);
    await context.close();
  });
});
