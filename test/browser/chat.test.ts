/**
 * The chat page end to end on stories260K in headless Chromium (SwiftShader WebGPU): install the sample model
 * from the local server, generate llama2.c's documented greedy story, stop a generation midway, generate again
 * from IndexedDB with the network off, and import the GGUF by drag and drop.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ggufBytes, llamaGgufMetadata, TINY_CONFIG, tinyGgufTensors } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS, STORIES260K_GREEDY_TEXT } from '../helpers/models.ts';
import { quantizeGgml32 } from '../formats/ggml-blocks.ts';
import { haveChromium, openApp, screenshot, useApp, watchErrors } from './harness.ts';

const GGUF = 'stories260K/stories260Ktok512.gguf';

/** Sets the sampling fields, sends `prompt`, and waits for the reply to finish; returns the reply's element data. */
async function generate(page: Page, settings: { temperature: number; maxTokens: number; seed?: number }, prompt = '') {
  await page.fill('#temperature', String(settings.temperature));
  await page.fill('#max-tokens', String(settings.maxTokens));
  await page.fill('#seed', settings.seed === undefined ? '' : String(settings.seed));
  const before = await page.locator('.reply').count();
  await page.fill('#prompt', prompt);
  await page.click('#send');
  // A chat reply, or in completion mode the document of prompt and continuation.
  const reply = page.locator('.reply').nth(before);
  await reply.and(page.locator('[data-finish]')).waitFor({ timeout: 120_000 });
  return {
    text: (await reply.locator('.body').textContent()) ?? '',
    meta: (await reply.locator('.meta').textContent()) ?? '',
    finish: await reply.getAttribute('data-finish'),
    ids: ((await reply.getAttribute('data-token-ids')) ?? '').split(',').filter(Boolean).map(Number),
  };
}

/** Records which progress rows (data-testid ending in -progress) appear on the page from now on. */
async function recordProgressRows(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen = new Set<string>();
    (window as unknown as { progressRows: Set<string> }).progressRows = seen;
    new MutationObserver(() => {
      for (const e of document.querySelectorAll('[data-testid$="-progress"]')) seen.add(e.getAttribute('data-testid')!);
    }).observe(document.body, { subtree: true, childList: true });
  });
}

async function progressRows(page: Page): Promise<string[]> {
  return page.evaluate(() => [...(window as unknown as { progressRows: Set<string> }).progressRows].sort());
}

/** Generates 40 tokens greedily from BOS and expects stories260K's documented story; returns the reply. */
async function expectGreedyStory(page: Page): Promise<Awaited<ReturnType<typeof generate>>> {
  const r = await generate(page, { temperature: 0, maxTokens: 40 });
  expect(r.ids.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
  expect(r.text.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
  return r;
}

async function waitLoaded(page: Page, id: string): Promise<void> {
  await page.waitForSelector(`#load-status[data-ready="${id}"]`, { timeout: 120_000 });
  expect(await page.isEnabled('#send')).toBe(true);
}

describe.skipIf(!haveChromium() || !haveSharedModel(GGUF))('chat page end to end on stories260K', () => {
  const session = useApp();
  /** The page open in a new context (nothing stored yet), desktop-sized. */
  const openFresh = async () => {
    const fresh = await session.browser.newContext({ viewport: { width: 1280, height: 800 } });
    return { fresh, p: await openApp(fresh, session.app.url) };
  };
  let context: BrowserContext;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    context = await session.browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    errors = watchErrors(page);
    await page.goto(session.app.url);
    await page.waitForSelector('body[data-ready="true"]');
  });

  test('installs stories260K from the local server (converted on first use) and loads it onto the GPU', async () => {
    await recordProgressRows(page);
    await page.click('[data-sample="stories260K"]');
    await page.waitForSelector('[data-model-id="stories260K"]', { timeout: 120_000 });
    const row = await page.textContent('[data-model-id="stories260K"]');
    expect(row).toContain('stories260K');
    expect(row).toMatch(/\d+(\.\d)? MB/);
    expect(await page.textContent('#storage')).toMatch(/^Models use 1\.\d MB;/);
    // The first install of a model on a page with WebGPU loads it straight away.
    await waitLoaded(page, 'stories260K');
    expect(await page.textContent('#load-status')).toContain('stories260K is ready');
    expect(await progressRows(page)).toEqual(['download-progress', 'gpu-progress']);
    expect(await page.textContent('[data-sample="stories260K"]')).toBe('stories260K is installed');
    expect(errors).toEqual([]);
  });

  test('generates the documented greedy story from BOS, streamed, with tokens per second', async () => {
    const r = await expectGreedyStory(page);
    expect(r.finish).toBe('length');
    expect(r.meta).toMatch(/^40 tokens in [\d.]+ s, [\d.]+ tokens\/s \(max tokens reached\)$/);
    expect(await page.textContent('#stats')).toMatch(/tokens\/s/);
    const shot = await screenshot(page, 'chat-after-generation.png');
    expect(readFileSync(shot).byteLength).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
  });

  test('the stop button ends a generation midway', async () => {
    // Click Stop from inside the page the moment the first text arrives, so the abort always lands mid-stream.
    await page.evaluate(() => {
      const messages = document.getElementById('messages')!;
      const seen = messages.querySelectorAll('.reply').length;
      const obs = new MutationObserver(() => {
        const replies = messages.querySelectorAll('.reply');
        if (replies.length > seen && replies[replies.length - 1].querySelector('.body')!.textContent) {
          obs.disconnect();
          document.getElementById('stop')!.click();
        }
      });
      obs.observe(messages, { subtree: true, childList: true, characterData: true });
    });
    const r = await generate(page, { temperature: 0.8, maxTokens: 120, seed: 7 });
    expect(r.finish).toBe('abort');
    expect(r.meta).toContain('(stopped)');
    expect(r.ids.length).toBeGreaterThan(0);
    expect(r.ids.length).toBeLessThan(120);
    expect(await page.isDisabled('#stop')).toBe(true);
    expect(await page.isEnabled('#send')).toBe(true);
  });

  test('chat mode streams a reply to a user message through chat.completions, and New conversation starts an empty one', async () => {
    await page.selectOption('#mode', 'chat');
    await page.fill('#system', 'You tell short stories.');
    const r = await generate(page, { temperature: 0, maxTokens: 16 }, 'Tell me a story about a cat.');
    expect(r.finish).toMatch(/^(stop|length)$/);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.meta).toMatch(/tokens\/s/);
    const users = page.locator('[data-role="user"] .body');
    expect(await users.last().textContent()).toBe('Tell me a story about a cat.');
    await page.click('#new-chat');
    expect(await page.locator('.message').count()).toBe(0);
    await page.selectOption('#mode', 'auto');
    await page.fill('#system', '');
  });

  test('model text is shown as text, never parsed as HTML', async () => {
    const r = await generate(page, { temperature: 0, maxTokens: 4 }, '<img src=x onerror="window.pwned=1"><b>bold</b>');
    expect(r.text.length).toBeGreaterThan(0);
    expect(await page.locator('.messages img, .messages b').count()).toBe(0);
    // stories260K has no chat template: the prompt opens a completion document.
    expect(await page.locator('.message.document .prompt').last().textContent()).toBe('<img src=x onerror="window.pwned=1"><b>bold</b>');
    expect(await page.evaluate(() => 'pwned' in window)).toBe(false);
  });

  test('the model manager deletes a model (unloading it) and installs one again from a package URL', async () => {
    page.once('dialog', (d) => void d.accept());
    await page.click('[data-model-id="stories260K"] [data-action="delete"]');
    await page.waitForSelector('#installed >> text=No models installed yet.');
    expect(await page.textContent('#storage')).toMatch(/^Models use 0 B;/);
    expect(await page.isDisabled('#send')).toBe(true);
    expect(await page.getAttribute('#load-status', 'data-ready')).toBeNull();
    await page.fill('#url-input', new URL('models/stories260K/manifest.json', session.app.url).href);
    await page.click('#url-form button[type="submit"]');
    await page.waitForSelector('[data-model-id="stories260K"]', { timeout: 120_000 });
    await waitLoaded(page, 'stories260K');
  });

  test('with the network off, a reload loads the shell and the stored model and generates again', async () => {
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
    });
    await context.setOffline(true);
    try {
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      // The last used model comes back from IndexedDB by itself.
      await waitLoaded(page, 'stories260K');
      await expectGreedyStory(page);
    } finally {
      await context.setOffline(false);
    }
  });

  test('imports the GGUF by drag and drop, converts it in a worker, and generates from it', async () => {
    const { fresh, p } = await openFresh();
    await p.selectOption('#quant', 'f32');
    const b64 = readFileSync(sharedModel(GGUF)).toString('base64');
    await recordProgressRows(p);
    const dataTransfer = await p.evaluateHandle((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'stories260Ktok512.gguf'));
      return dt;
    }, b64);
    await p.dispatchEvent('#drop-zone', 'dragover', { dataTransfer });
    await p.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    await p.waitForSelector('[data-model-id="stories260Ktok512"]', { timeout: 120_000 });
    expect(await p.textContent('[data-model-id="stories260Ktok512"]')).toContain('f32');
    await waitLoaded(p, 'stories260Ktok512');
    expect(await progressRows(p)).toEqual(['convert-progress', 'gpu-progress']);
    await expectGreedyStory(p);

    // Dropping the same file again would overwrite the model in use: the page asks first, and No changes nothing.
    const asked: string[] = [];
    p.once('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await p.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/^A model named stories260Ktok512 \([\d.]+ MB\) is already installed\. It is the model in use; it will be unloaded first\. Replace it/);
    expect(await p.locator('[data-testid="convert-progress"]').count()).toBe(0);
    expect(await p.getAttribute('#load-status', 'data-ready')).toBe('stories260Ktok512');
    // Yes unloads it, converts again (now to q8) and loads the new one.
    p.once('dialog', (d) => void d.accept());
    await p.selectOption('#quant', 'q8');
    await p.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    await p.waitForSelector('[data-model-id="stories260Ktok512"]:has-text("q8")', { timeout: 120_000 });
    await waitLoaded(p, 'stories260Ktok512');
    expect(await p.locator('[data-model-id]').count()).toBe(1);
    await fresh.close();
  });

  test('imports checkpoints from URLs typed into the page: a GGUF file, and a llama2.c .bin with its tokenizer URL', async () => {
    // The local server serves any file in a package folder, with Range support: put the checkpoints beside one.
    const dir = path.join(session.app.packagesDir, 'stories260K');
    for (const f of [GGUF, 'stories260K/stories260K.bin', 'stories260K/tok512.bin']) copyFileSync(sharedModel(f), path.join(dir, path.basename(f)));
    const { fresh, p } = await openFresh();
    await p.selectOption('#quant', 'f32');
    await recordProgressRows(p);
    await p.fill('#url-input', new URL('models/stories260K/stories260Ktok512.gguf', session.app.url).href);
    await p.click('#url-form button[type="submit"]');
    await p.waitForSelector('[data-model-id="stories260Ktok512"]', { timeout: 120_000 });
    expect(await p.textContent('[data-model-id="stories260Ktok512"]')).toContain('f32');
    await waitLoaded(p, 'stories260Ktok512');
    expect(await progressRows(p)).toEqual(['download-progress', 'gpu-progress']);
    await expectGreedyStory(p);

    // A llama2.c checkpoint carries no tokenizer: without its URL the page says so; with it, it imports.
    await p.fill('#url-input', new URL('models/stories260K/stories260K.bin', session.app.url).href);
    await p.click('#url-form button[type="submit"]');
    await p.waitForSelector('#banner:not([hidden])', { timeout: 60_000 });
    expect(await p.textContent('#banner-text')).toContain('tokenizer');
    await p.fill('#tokenizer-url-input', new URL('models/stories260K/tok512.bin', session.app.url).href);
    await p.click('#url-form button[type="submit"]');
    await p.waitForSelector('[data-model-id="stories260K"]', { timeout: 120_000 });
    expect(await p.isHidden('#banner')).toBe(true);
    await p.click('[data-model-id="stories260K"] [data-action="use"]');
    await waitLoaded(p, 'stories260K');
    const r2 = await generate(p, { temperature: 0, maxTokens: 40 });
    expect(r2.ids.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
    await screenshot(p, 'chat-import-url.png');
    await fresh.close();
  });

  test('a GGUF of Q4_0 tensors dropped with the Automatic weight format keeps its blocks (as q4), not requantized to q8', async () => {
    const tensors = tinyGgufTensors().map((t) =>
      t.shape.length === 2 ? { ...t, ggmlType: 2, data: quantizeGgml32(2, new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)) } : t,
    );
    const b64 = Buffer.from(ggufBytes(llamaGgufMetadata(TINY_CONFIG), tensors)).toString('base64');
    const { fresh, p } = await openFresh();
    expect(await p.inputValue('#quant')).toBe('auto');
    const dataTransfer = await p.evaluateHandle((data) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], 'tiny-q4_0.gguf'));
      return dt;
    }, b64);
    await p.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    await p.waitForSelector('[data-model-id="tiny-q4_0"]', { timeout: 120_000 });
    expect(await p.textContent('[data-model-id="tiny-q4_0"]')).toMatch(/ q4(?!\d)/);
    await fresh.close();
  });

  test('converts a llama2.c checkpoint with its tokenizer picked together in the file dialog, to q8 by default', async () => {
    const { fresh, p } = await openFresh();
    // Automatic: a checkpoint without quantized GGUF tensors becomes q8.
    expect(await p.inputValue('#quant')).toBe('auto');
    // Without its tokenizer the checkpoint is refused, in the page's words (no command-line flags).
    await p.setInputFiles('#file-input', [sharedModel('stories260K/stories260K.bin')]);
    await p.waitForSelector('#banner:not([hidden])', { timeout: 60_000 });
    const banner = (await p.textContent('#banner-text')) ?? '';
    expect(banner).toContain('no tokenizer');
    expect(banner).toContain('pick or drop it together with the weights');
    expect(banner).not.toMatch(/--\w/);
    // Picking both files works, and the success takes the stale error down.
    await p.setInputFiles('#file-input', [sharedModel('stories260K/stories260K.bin'), sharedModel('stories260K/tok512.bin')]);
    await p.waitForSelector('[data-model-id="stories260K"]', { timeout: 120_000 });
    expect(await p.textContent('[data-model-id="stories260K"]')).toContain('q8');
    await waitLoaded(p, 'stories260K');
    expect(await p.isHidden('#banner')).toBe(true);
    const r = await generate(p, { temperature: 0, maxTokens: 20 });
    expect(r.ids).toHaveLength(20);
    expect(r.text.startsWith('Once upon a time')).toBe(true);
    await fresh.close();
  });
});
