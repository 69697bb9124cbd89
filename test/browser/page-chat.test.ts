/**
 * The chat page's conversation features in headless Chromium (SwiftShader WebGPU) on the server's synthetic
 * tiny-chat model (random weights, Llama 2 chat template): load progress by phase, chat with the context meter,
 * regenerate, edit and resend, copy, saved conversations (new, switch, rename, delete, kept over a reload),
 * Markdown replies rendered without HTML, Escape to stop, top-k and penalties reaching the sampler, completion as
 * one document, dismissable errors, the phone-sized layout and the keyboard path to the drop zone.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { haveChromium, openApp, screenshot, useApp, watchErrors } from './harness.ts';

interface Reply {
  text: string;
  meta: string;
  finish: string | null;
}

/** Sends `prompt` with the given sampling fields and waits for the reply (chat bubble or completion document). */
async function send(page: Page, prompt: string, settings: Record<string, string | number> = {}): Promise<Reply> {
  for (const [id, value] of Object.entries({ temperature: 0, 'max-tokens': 12, seed: '', ...settings })) await page.fill(`#${id}`, String(value));
  const before = await page.locator('.reply[data-finish]').count();
  await page.fill('#prompt', prompt);
  await page.click('#send');
  return lastReply(page, before);
}

/** Waits until the conversation shows more than `before` finished replies and returns the last one. */
async function lastReply(page: Page, before: number): Promise<Reply> {
  await page.waitForFunction((n) => document.querySelectorAll('.reply[data-finish]').length > n && !document.querySelector('[aria-busy]'), before, { timeout: 120_000 });
  const reply = page.locator('.reply[data-finish]').last();
  return {
    text: (await reply.locator('.body').textContent()) ?? '',
    meta: (await reply.locator('.meta').textContent()) ?? '',
    finish: await reply.getAttribute('data-finish'),
  };
}

async function installTinyChat(page: Page): Promise<void> {
  await page.click('[data-sample="tiny-chat"]');
  await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
}

/** Titles in the conversations panel, top to bottom. */
function conversationTitles(page: Page): Promise<string[]> {
  return page.locator('#conversations [data-action="open"]').allTextContents();
}

/** Writes a conversation record straight into the page's IndexedDB, as an earlier session would have saved it. */
async function storeConversation(page: Page, record: object): Promise<void> {
  await page.evaluate(
    (rec) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('llama-webgpu-chats');
        open.onupgradeneeded = () => open.result.createObjectStore('conversations');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('conversations', 'readwrite');
          tx.objectStore('conversations').put(rec, (rec as { id: string }).id);
          tx.oncomplete = () => {
            open.result.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    record,
  );
}

describe.skipIf(!haveChromium())('chat page features on the synthetic tiny-chat model', () => {
  const session = useApp();

  describe('one session: conversations, replies and settings', () => {
    let context: BrowserContext;
    let page: Page;
    let errors: string[];

    beforeAll(async () => {
      context = await session.browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(session.app.url).origin });
      page = await openApp(context, session.app.url);
      errors = watchErrors(page);
    });

    afterAll(async () => {
      await context?.close();
    });

    test('installs tiny-chat, names each load phase (no "compile 100%" while weights upload), and chats through the template', async () => {
      expect(await page.getAttribute('#messages', 'role')).toBe('log');
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { loadLabels: string[] }).loadLabels = seen;
        new MutationObserver(() => {
          const label = document.querySelector('[data-testid="gpu-progress"] span')?.textContent;
          const phase = document.querySelector<HTMLElement>('[data-testid="gpu-progress"]')?.dataset.phase;
          if (label && seen[seen.length - 1] !== `${phase}|${label}`) seen.push(`${phase}|${label}`);
        }).observe(document.getElementById('load-status')!, { subtree: true, childList: true, characterData: true, attributes: true });
      });
      await installTinyChat(page);
      const labels = await page.evaluate(() => (window as unknown as { loadLabels: string[] }).loadLabels);
      expect(labels.some((l) => /^weights\|Loading tiny-chat: uploading weights to the GPU, \d+% of [\d.]+ MB$/.test(l))).toBe(true);
      expect(labels.some((l) => l === 'compile|Loading tiny-chat: preparing the GPU pipelines…')).toBe(true);
      expect(labels.filter((l) => /compile/i.test(l) && /%/.test(l))).toEqual([]);
      expect(await page.textContent('#load-status')).toMatch(/tiny-chat is ready/);
      // Automatic mode follows the model's chat template.
      expect(await page.getAttribute('#prompt', 'placeholder')).toMatch(/^Message/);

      const r = await send(page, 'Hello there');
      expect(r.finish).toMatch(/^(stop|length)$/);
      expect(r.meta).toMatch(/tokens in [\d.]+ s, [\d.]+ tokens\/s/);
      expect(await page.locator('.message.user .body').allTextContents()).toEqual(['Hello there']);
      expect(await page.locator('.message.assistant').count()).toBe(1);
      expect(errors).toEqual([]);
    });

    test('the context meter shows the tokens the conversation fills, and grows with each turn', async () => {
      const first = await page.textContent('#context-text');
      const m = /^Context: (\d+) of 512 tokens \(\d+%\)$/.exec(first ?? '');
      expect(m, first ?? '').not.toBeNull();
      const used = Number(m![1]);
      expect(used).toBeGreaterThan(5);
      expect(await page.evaluate(() => (document.getElementById('context-meter') as HTMLMeterElement).value)).toBe(used);
      await send(page, 'And again');
      const second = Number(/^Context: (\d+) of 512/.exec((await page.textContent('#context-text')) ?? '')![1]);
      expect(second).toBeGreaterThan(used);
    });

    test('regenerate replaces the last reply (greedy: the same text again); edit and resend cuts the conversation there', async () => {
      const replies = page.locator('.message.assistant .body');
      const before = await replies.last().textContent();
      const finished = await page.locator('.reply[data-finish]').count();
      await page.click('.message.assistant:last-child [data-action="regenerate"]');
      await lastReply(page, finished - 1);
      expect(await replies.count()).toBe(2);
      expect(await replies.last().textContent()).toBe(before);
      // Only the last reply offers regenerate.
      expect(await page.locator('[data-action="regenerate"]').count()).toBe(1);

      await page.click('.message.user >> nth=0 >> [data-action="edit"]');
      await page.fill('.message .edit-box', 'Edited question');
      await page.click('[data-action="edit-send"]');
      await lastReply(page, 0);
      expect(await page.locator('.message.user .body').allTextContents()).toEqual(['Edited question']);
      expect(await page.locator('.message.assistant').count()).toBe(1);
    });

    test('copy puts a message on the clipboard', async () => {
      await page.click('.message.user [data-action="copy"]');
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('Edited question');
      await page.waitForSelector('.message.user [data-action="copy"]:text("Copied")');
    });

    test('conversations are saved: new, switch, rename, delete, and still there after a reload', async () => {
      // A conversation is named after its first message when first saved, and keeps that name after an edit.
      expect(await conversationTitles(page)).toEqual(['Hello there']);
      await page.click('#new-chat');
      expect(await page.locator('.message').count()).toBe(0);
      await send(page, 'Second chat');
      expect(await conversationTitles(page)).toEqual(['Second chat', 'Hello there']);
      expect(await page.getAttribute('#conversations li.active', 'data-conversation-id')).toBeTruthy();

      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
      expect(await conversationTitles(page)).toEqual(['Second chat', 'Hello there']);
      // The most recent conversation opens by itself, with its context meter.
      expect(await page.locator('.message.user .body').allTextContents()).toEqual(['Second chat']);
      expect(await page.textContent('#context-text')).toMatch(/^Context: \d+ of 512 tokens/);

      await page.click('#conversations li:nth-child(2) [data-action="open"]');
      await page.waitForSelector('.message.user .body:text("Edited question")');
      page.once('dialog', (d) => void d.accept('Renamed chat'));
      await page.click('#conversations li:nth-child(2) [data-action="rename"]');
      await page.waitForFunction(() => document.querySelector('#conversations')!.textContent!.includes('Renamed chat'));
      page.once('dialog', (d) => void d.accept());
      await page.click('#conversations li:has-text("Second chat") [data-action="delete"]');
      await page.waitForFunction(() => document.querySelectorAll('#conversations [data-action="open"]').length === 1);
      expect(await conversationTitles(page)).toEqual(['Renamed chat']);
      expect(await page.locator('.message.user .body').allTextContents()).toEqual(['Edited question']);
      await screenshot(page, 'page-chat-conversations.png');
    });

    test('replies render as Markdown with code blocks, and HTML the model writes stays text', async () => {
      const now = Date.now();
      const reply = [
        '# Plan',
        'Use **bold**, *emphasis* and `inline <b>code</b>`.',
        '',
        '```js',
        'const html = "<img src=x onerror=window.pwned=1>";',
        '```',
        '- one',
        '- two',
        '',
        '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> [bad](javascript:window.pwned=3) [good](https://example.com/)',
      ].join('\n');
      await storeConversation(page, {
        id: 'markdown-check', title: 'Markdown check', createdAt: now, updatedAt: now + 1e6,
        messages: [{ role: 'user', content: 'Show markdown' }, { role: 'assistant', content: reply, meta: 'stored', finish: 'stop' }],
      });
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('.message.user .body:text("Show markdown")');
      const body = page.locator('.message.assistant .body');
      expect(await body.locator('h3').textContent()).toBe('Plan');
      expect(await body.locator('strong').textContent()).toBe('bold');
      expect(await body.locator('em').textContent()).toBe('emphasis');
      expect(await body.locator('p > code').textContent()).toBe('inline <b>code</b>');
      expect(await body.locator('.code-block pre code').textContent()).toBe('const html = "<img src=x onerror=window.pwned=1>";');
      expect(await body.locator('.code-block .code-head span').textContent()).toBe('js');
      expect(await body.locator('li').allTextContents()).toEqual(['one', 'two']);
      expect(await body.locator('a').count()).toBe(1);
      expect(await body.locator('a').getAttribute('href')).toBe('https://example.com/');
      expect(await body.locator('a').getAttribute('rel')).toContain('noopener');
      expect(await body.textContent()).toContain('<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> [bad](javascript:window.pwned=3)');
      expect(await page.locator('#messages img, #messages script, #messages b').count()).toBe(0);
      await body.locator('[data-action="copy-code"]').click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('const html = "<img src=x onerror=window.pwned=1>";');
      expect(await page.evaluate(() => 'pwned' in window)).toBe(false);
      await screenshot(page, 'page-chat-markdown.png');
    });

    test('Escape stops a generation midway', async () => {
      await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
      await page.click('#new-chat');
      // Press Escape in the composer the moment the first text arrives, so the stop always lands mid-stream.
      await page.evaluate(() => {
        const messages = document.getElementById('messages')!;
        const obs = new MutationObserver(() => {
          if (messages.querySelector('[aria-busy] .body')?.textContent) {
            obs.disconnect();
            document.getElementById('prompt')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
          }
        });
        obs.observe(messages, { subtree: true, childList: true, characterData: true });
      });
      const r = await send(page, 'Tell me everything', { temperature: 0.8, seed: 3, 'max-tokens': 400 });
      expect(r.finish).toBe('abort');
      expect(r.meta).toContain('(stopped)');
      expect(Number(/^(\d+) tokens/.exec(r.meta)![1])).toBeLessThan(400);
      expect(await page.getAttribute('#stop', 'aria-keyshortcuts')).toBe('Escape');
      expect(await page.isDisabled('#stop')).toBe(true);
    });

    test('top-k and the penalties reach the sampler, and the settings are kept over a reload', async () => {
      await page.selectOption('#mode', 'completion');
      await page.click('#new-chat');
      const greedy = await send(page, 'abc', { temperature: 0, 'max-tokens': 24, 'top-k': 40, 'repetition-penalty': 1 });
      // Top-k 1 leaves only the most likely token: any temperature and seed gives the greedy text.
      const topK1 = await send(page, 'abc', { temperature: 1.5, seed: 11, 'max-tokens': 24, 'top-k': 1 });
      expect(topK1.text).toBe(greedy.text);
      const free = await send(page, 'abc', { temperature: 1.5, seed: 11, 'max-tokens': 24, 'top-k': 0 });
      expect(free.text).not.toBe(greedy.text);
      // A strong repetition penalty steers greedy decoding away from the tokens it already produced.
      const penalized = await send(page, 'abc', { temperature: 0, 'max-tokens': 24, 'top-k': 40, 'repetition-penalty': 3 });
      expect(penalized.text).not.toBe(greedy.text);
      await page.fill('#top-k', '7');
      await page.dispatchEvent('#top-k', 'change');
      await page.fill('#presence-penalty', '0.5');
      await page.dispatchEvent('#presence-penalty', 'change');
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      expect(await page.inputValue('#top-k')).toBe('7');
      expect(await page.inputValue('#presence-penalty')).toBe('0.5');
      expect(await page.inputValue('#mode')).toBe('completion');
    });

    test('completion mode shows the prompt and its continuation as one document', async () => {
      await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
      await page.click('#new-chat');
      const r = await send(page, 'Once upon', { 'top-k': 40, 'repetition-penalty': 1, 'presence-penalty': 0 });
      expect(await page.locator('.message.user').count()).toBe(0);
      const doc = page.locator('.message.document');
      expect(await doc.count()).toBe(1);
      expect(await doc.locator('.prompt').textContent()).toBe('Once upon');
      const continuation = (await doc.locator('.continuation').textContent()) ?? '';
      expect(continuation.length).toBeGreaterThan(0);
      expect(r.text).toBe(`Once upon${continuation}`);
      await page.click('.message.document [data-action="copy"]');
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(r.text);
      await screenshot(page, 'page-chat-completion.png');
      await page.selectOption('#mode', 'auto');
      await page.dispatchEvent('#mode', 'change');
    });

    test('an error can be dismissed, and a later success takes a stale one down', async () => {
      const fail = async () => {
        await page.fill('#url-input', new URL('models/no-such-model/', session.app.url).href);
        await page.click('#url-form button[type="submit"]');
        await page.waitForSelector('#banner:not([hidden])', { timeout: 60_000 });
      };
      await fail();
      expect(await page.textContent('#banner-text')).toMatch(/no-such-model/);
      await page.click('#banner-close');
      expect(await page.isHidden('#banner')).toBe(true);
      await fail();
      // A successful install (here of the same package again, after the page asks, which stores nothing new)
      // clears it, and the model is loaded again.
      await page.fill('#url-input', new URL('models/tiny-chat/', session.app.url).href);
      const asked: string[] = [];
      page.once('dialog', (d) => {
        asked.push(d.message());
        void d.accept();
      });
      await page.click('#url-form button[type="submit"]');
      await page.waitForFunction(() => (document.getElementById('banner') as HTMLElement).hidden, undefined, { timeout: 120_000 });
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(/^A model named tiny-chat \([\d.]+ MB\) is already installed\. It is the model in use; it will be unloaded first\./);
      await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
    });
  });

  describe('a phone-sized screen and the keyboard', () => {
    test('a phone-sized screen shows the composer without scrolling, the side panels folded, and opens them on tap', async () => {
      const context = await session.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true });
      const page = await openApp(context, session.app.url);
      const errors = watchErrors(page);
      for (const id of ['chats-panel', 'models-panel', 'settings-panel']) expect(await page.getAttribute(`#${id}`, 'open'), id).toBeNull();
      const composer = (await page.locator('#composer').boundingBox())!;
      expect(composer.y + composer.height).toBeLessThanOrEqual(844);
      expect(composer.width).toBeGreaterThan(300);
      await screenshot(page, 'page-phone-folded.png', false);
      // A smaller phone (375x667) too: the chat shrinks, the composer stays on screen.
      await page.setViewportSize({ width: 375, height: 667 });
      const small = (await page.locator('#composer').boundingBox())!;
      expect(small.y + small.height).toBeLessThanOrEqual(667);
      expect((await page.locator('#messages').boundingBox())!.height).toBeGreaterThan(150);
      await screenshot(page, 'page-phone-small.png', false);
      await page.setViewportSize({ width: 390, height: 844 });

      await page.tap('#models-panel > summary');
      await page.waitForSelector('[data-sample="tiny-chat"]', { state: 'visible' });
      await screenshot(page, 'page-phone-models-open.png', false);
      await page.tap('[data-sample="tiny-chat"]');
      await page.waitForSelector('#load-status[data-ready="tiny-chat"]', { timeout: 120_000 });
      await page.tap('#models-panel > summary');
      await page.tap('#settings-panel > summary');
      await page.fill('#max-tokens', '24');
      await page.tap('#settings-panel > summary');
      await page.fill('#prompt', 'Hi from a phone');
      await page.tap('#send');
      const r = await lastReply(page, 0);
      expect(r.finish).toMatch(/^(stop|length)$/);
      const after = (await page.locator('#composer').boundingBox())!;
      expect(after.y + after.height).toBeLessThanOrEqual(844);
      await screenshot(page, 'page-phone-chat.png', false);
      expect(errors).toEqual([]);
      await context.close();
    });

    test('Tab reaches the panels, the sample buttons and the drop zone, and Enter on the drop zone opens the file picker', async () => {
      const context = await session.browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await openApp(context, session.app.url);
      // Listening from the start turns on Chromium's file-chooser interception before any key is pressed.
      const chooser = page.waitForEvent('filechooser', { timeout: 60_000 });
      const reached: string[] = [];
      for (let i = 0; i < 40 && !reached.includes('drop-zone'); i++) {
        await page.keyboard.press('Tab');
        reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('data-sample') || document.activeElement?.tagName || ''));
      }
      expect(reached).toContain('SUMMARY');
      expect(reached).toContain('new-chat');
      expect(reached).toContain('tiny-chat');
      expect(reached).toContain('url-input');
      expect(reached).toContain('drop-zone');
      await page.keyboard.press('Enter');
      expect((await chooser).isMultiple()).toBe(true);
      await context.close();
    });
  });
});
