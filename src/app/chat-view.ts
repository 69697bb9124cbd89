/**
 * The chat: the open conversation, the composer with send and stop (Escape stops too), regenerate, edit and
 * resend, copy, the context meter and the tokens-per-second line. Conversations are saved in IndexedDB after each
 * turn. Replies render as Markdown through markdown.ts (DOM nodes and text nodes only); user text, completion
 * documents and errors are set through textContent.
 */
import type { ChatMessage } from '../generate/chat-template.ts';
import type { WorkerEngine } from '../worker/client.ts';
import { ConversationList } from './conversation-list.ts';
import { newConversation, titleFrom, type Conversation, type ConversationStore, type StoredMessage } from './conversations.ts';
import { byId, el } from './dom.ts';
import { clearBanner, describeError, showBanner } from './errors-view.ts';
import { renderMarkdown } from './markdown.ts';
import { persistSettings, readSettings, type Settings } from './settings.ts';

/** Above this share of the context the meter warns that the conversation is nearly full. */
const CONTEXT_WARN = 0.85;

type Reply = Extract<StoredMessage, { role: 'assistant' | 'document' }>;

export class ChatView {
  private engine: WorkerEngine | null = null;
  private chatTemplate: 'llama-2' | 'none' = 'none';
  private contextSize = 0;
  private conv: Conversation = newConversation();
  private running: AbortController | null = null;
  private readonly list: ConversationList;
  private readonly messages = byId('messages');
  private readonly prompt = byId<HTMLTextAreaElement>('prompt');
  private readonly send = byId<HTMLButtonElement>('send');
  private readonly stop = byId<HTMLButtonElement>('stop');
  private readonly stats = byId('stats');
  private readonly meter = byId<HTMLMeterElement>('context-meter');
  private readonly meterText = byId('context-text');

  constructor(private readonly store: ConversationStore) {
    this.list = new ConversationList({
      onOpen: (id) => void this.open(id),
      onNew: () => this.startNew(),
      onRename: (id, title) => void this.rename(id, title),
      onDelete: (id) => void this.remove(id),
    });
    byId<HTMLFormElement>('composer').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    this.prompt.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        void this.submit();
      }
    });
    this.stop.addEventListener('click', () => this.running?.abort());
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.running) {
        ev.preventDefault();
        this.running.abort();
      }
    });
    this.messages.addEventListener('click', (ev) => this.onMessageAction(ev));
    persistSettings(() => this.updatePlaceholder());
  }

  /** Lists the saved conversations and opens the most recent one. */
  async init(): Promise<void> {
    const all = await this.store.list().catch((e: unknown) => {
      showBanner(`Saved conversations could not be read: ${describeError(e)}`);
      return [];
    });
    if (all.length > 0) this.conv = all[0];
    this.list.render(all, this.conv.id);
    this.renderMessages();
  }

  /** Attaches a loaded engine (or detaches with null) and enables the composer. */
  setEngine(engine: WorkerEngine | null, chatTemplate: 'llama-2' | 'none' = 'none'): void {
    this.running?.abort();
    this.engine = engine;
    this.chatTemplate = chatTemplate;
    this.contextSize = engine?.stats().contextLength ?? 0;
    this.prompt.disabled = this.send.disabled = !engine;
    this.updatePlaceholder();
    this.renderMessages();
  }

  private mode(s: Settings = readSettings()): 'chat' | 'completion' {
    return s.mode !== 'auto' ? s.mode : this.chatTemplate === 'llama-2' ? 'chat' : 'completion';
  }

  private updatePlaceholder(): void {
    this.prompt.placeholder = !this.engine
      ? 'Choose a model to start.'
      : this.mode() === 'chat'
        ? 'Message (Enter to send, Shift+Enter for a new line, Escape to stop)'
        : 'Beginning of a text to continue (empty: the model starts on its own)';
  }

  // ---- conversations ----

  private async refreshList(): Promise<void> {
    this.list.render(await this.store.list(), this.conv.id);
  }

  private startNew(): void {
    this.running?.abort();
    this.conv = newConversation();
    this.stats.textContent = '';
    this.renderMessages();
    void this.refreshList();
    this.prompt.focus();
  }

  private async open(id: string): Promise<void> {
    const c = await this.store.get(id);
    if (!c) return;
    this.running?.abort();
    this.conv = c;
    this.stats.textContent = '';
    this.renderMessages();
    await this.refreshList();
  }

  private async rename(id: string, title: string): Promise<void> {
    const c = id === this.conv.id ? this.conv : await this.store.get(id);
    if (!c) return;
    c.title = title;
    await this.store.save(c);
    await this.refreshList();
  }

  private async remove(id: string): Promise<void> {
    await this.store.delete(id);
    if (id === this.conv.id) {
      this.running?.abort();
      this.conv = newConversation();
      this.renderMessages();
    }
    await this.refreshList();
  }

  /** Saves a conversation (once it has a message) and puts it at the top of the list. */
  private async save(conv: Conversation): Promise<void> {
    if (conv.messages.length === 0) return;
    if (conv.title === 'New conversation') {
      const first = conv.messages[0];
      conv.title = titleFrom(first.role === 'document' ? first.prompt || first.content : first.content);
    }
    conv.updatedAt = Date.now();
    try {
      await this.store.save(conv);
      await this.refreshList();
    } catch (e) {
      showBanner(`The conversation could not be saved: ${describeError(e)}`);
    }
  }

  // ---- rendering ----

  private renderMessages(): void {
    this.messages.replaceChildren();
    if (this.conv.messages.length === 0) {
      this.messages.append(
        el('p', {
          class: 'muted empty-hint',
          text: this.engine
            ? 'Write a message below. The model runs on this device’s GPU; nothing is sent to a server.'
            : 'Install a model in the Models panel (or drop a model file there), then write here. Models run on this device’s GPU; nothing is sent to a server.',
        }),
      );
    }
    this.conv.messages.forEach((m, i) => this.messages.append(this.messageElement(m, i)));
    this.messages.scrollTop = this.messages.scrollHeight;
    this.showContext();
  }

  private messageElement(m: StoredMessage, index: number): HTMLDivElement {
    const last = index === this.conv.messages.length - 1;
    const body = el('div', { class: 'body' });
    const meta = el('span', { class: 'meta' });
    const actions = el('div', { class: 'message-actions' });
    // Edit and regenerate need a loaded model; copy does not.
    const action = (name: string, label: string, text: string) =>
      actions.append(el('button', { type: 'button', class: 'secondary small', 'data-action': name, 'aria-label': label, text, disabled: name !== 'copy' && !this.engine }));
    let root: HTMLDivElement;
    if (m.role === 'user') {
      body.textContent = m.content;
      root = el('div', { class: 'message user', 'data-role': 'user' }, body, actions);
      action('edit', 'Edit and resend this message', 'Edit');
      action('copy', 'Copy this message', 'Copy');
    } else if (m.role === 'assistant') {
      body.classList.add('markdown');
      body.append(renderMarkdown(m.content));
      root = el('div', { class: 'message assistant reply', 'data-role': 'assistant' }, body, meta, actions);
      action('copy', 'Copy this reply', 'Copy');
      if (last) action('regenerate', 'Regenerate this reply', 'Regenerate');
    } else {
      body.append(el('span', { class: 'prompt', text: m.prompt }), el('span', { class: 'continuation', text: m.content }));
      root = el('div', { class: 'message document reply', 'data-role': 'document' }, body, meta, actions);
      action('edit', 'Edit the prompt and continue again', 'Edit');
      action('copy', 'Copy the whole text', 'Copy');
      if (last) action('regenerate', 'Continue the prompt again', 'Regenerate');
      if (m.tokenIds) root.dataset.tokenIds = m.tokenIds.join(',');
    }
    if (m.role !== 'user') {
      meta.textContent = m.meta ?? '';
      if (m.finish) root.dataset.finish = m.finish;
    }
    root.dataset.index = String(index);
    return root;
  }

  private showContext(): void {
    const used = this.conv.contextUsed ?? 0;
    const size = this.conv.contextSize ?? this.contextSize;
    if (!size) {
      this.meter.value = 0;
      this.meterText.textContent = 'Context: no model loaded';
      return;
    }
    const share = Math.min(1, used / size);
    this.meter.max = size;
    this.meter.value = Math.min(used, size);
    this.meterText.textContent =
      `Context: ${used} of ${size} tokens (${Math.round(share * 100)}%)` + (share >= CONTEXT_WARN ? '. Nearly full: start a new conversation to keep replies coherent.' : '');
    this.meterText.classList.toggle('warn', share >= CONTEXT_WARN);
  }

  // ---- actions on messages ----

  private onMessageAction(ev: MouseEvent): void {
    const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-action]');
    if (!button) return;
    const root = button.closest<HTMLElement>('.message');
    const action = button.dataset.action;
    if (action === 'copy-code') {
      void copyText(button, button.closest('.code-block')?.querySelector('code')?.textContent ?? '');
      return;
    }
    const index = Number(root?.dataset.index);
    const m = this.conv.messages[index];
    if (!m) return;
    if (action === 'copy') void copyText(button, m.role === 'document' ? m.prompt + m.content : m.content);
    else if (action === 'regenerate') void this.regenerate();
    else if (action === 'edit' && root) this.edit(root, index);
  }

  private edit(root: HTMLElement, index: number): void {
    if (this.running) return;
    const m = this.conv.messages[index];
    const original = m.role === 'document' ? m.prompt : m.content;
    const box = el('textarea', { class: 'edit-box', rows: 3, 'aria-label': 'Edit the message' });
    box.value = original;
    const save = el('button', { type: 'button', text: 'Send', 'data-action': 'edit-send' });
    const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel', 'data-action': 'edit-cancel' });
    const editor = el('div', { class: 'editor' }, box, el('div', { class: 'row' }, save, cancel));
    root.replaceChildren(editor);
    box.focus();
    const resend = () => {
      if (!this.engine || this.running) return;
      const text = box.value;
      this.conv.messages.length = index;
      if (m.role === 'document') void this.runCompletion(text);
      else if (text.trim()) {
        this.conv.messages.push({ role: 'user', content: text });
        void this.runChat();
      } else this.renderMessages();
    };
    save.addEventListener('click', resend);
    cancel.addEventListener('click', () => this.renderMessages());
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        resend();
      } else if (ev.key === 'Escape' && !this.running) this.renderMessages();
    });
  }

  private async regenerate(): Promise<void> {
    const last = this.conv.messages[this.conv.messages.length - 1];
    if (!this.engine || this.running || !last || last.role === 'user') return;
    this.conv.messages.pop();
    if (last.role === 'document') await this.runCompletion(last.prompt);
    else await this.runChat();
  }

  // ---- generation ----

  private async submit(): Promise<void> {
    if (!this.engine || this.running) return;
    const text = this.prompt.value;
    const mode = this.mode();
    if (mode === 'chat' && !text.trim()) return;
    this.prompt.value = '';
    if (mode === 'chat') {
      this.conv.messages.push({ role: 'user', content: text });
      await this.runChat();
    } else await this.runCompletion(text);
  }

  /** The chat so far as alternating user/assistant turns; a user message left unanswered by an error is skipped. */
  private chatHistory(system: string): ChatMessage[] {
    const turns: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
    const msgs = this.conv.messages.filter((m) => m.role !== 'document');
    msgs.forEach((m, i) => {
      const next = msgs[i + 1];
      if (m.role === 'user' && (next === undefined || next.role === 'assistant')) turns.push({ role: 'user', content: m.content });
      else if (m.role === 'assistant' && msgs[i - 1]?.role === 'user') turns.push({ role: 'assistant', content: m.content });
    });
    return turns;
  }

  /** Answers the conversation's last user message. */
  private async runChat(): Promise<void> {
    const s = readSettings();
    const messages = this.chatHistory(s.system);
    const reply: Reply = { role: 'assistant', content: '' };
    await this.run(reply, async (engine, signal, show) => {
      const stream = await engine.chat.completions.create({
        messages, stream: true, temperature: s.temperature, top_p: s.topP, top_k: s.topK, repetition_penalty: s.repetitionPenalty,
        frequency_penalty: s.frequencyPenalty, presence_penalty: s.presencePenalty, max_tokens: s.maxTokens, seed: s.seed, signal,
      });
      let tokens = 0;
      let finish: string | null = null;
      let rate = 0;
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        if (c.delta.content) {
          reply.content += c.delta.content;
          show(++tokens);
        }
        if (c.finish_reason) finish = c.finish_reason;
        if (chunk.usage) {
          tokens = chunk.usage.completion_tokens;
          rate = chunk.usage.extra.decode_tokens_per_s;
        }
      }
      return { tokens, rate, finish: finish ?? 'stop' };
    });
  }

  /** Continues `prompt` as plain text; prompt and continuation show as one document. */
  private async runCompletion(prompt: string): Promise<void> {
    const s = readSettings();
    const reply: Reply = { role: 'document', prompt, content: '' };
    await this.run(reply, async (engine, signal, show) => {
      const run = engine.generate(prompt, {
        temperature: s.temperature, topP: s.topP, topK: s.topK, repetitionPenalty: s.repetitionPenalty, frequencyPenalty: s.frequencyPenalty,
        presencePenalty: s.presencePenalty, maxTokens: s.maxTokens, seed: s.seed, signal,
      });
      const ids: number[] = [];
      for await (const d of run) {
        reply.content += d.text;
        ids.push(...d.tokenIds);
        show(ids.length);
      }
      const stats = await run.result;
      // The generated token ids, for inspecting how the tokenizer split the text.
      reply.tokenIds = ids;
      return { tokens: stats.generatedTokens, rate: stats.decodeTokensPerSecond, finish: stats.finishReason ?? 'stop' };
    });
  }

  /**
   * Shows `reply` streaming in at the end of the conversation while `generate` runs, then stores it with its stats
   * line and saves the conversation. On failure the reply is dropped and the error shown in its place.
   */
  private async run(
    reply: Reply,
    generate: (
      engine: WorkerEngine,
      signal: AbortSignal,
      show: (tokens: number) => void,
    ) => Promise<{ tokens: number; rate: number; finish: string }>,
  ): Promise<void> {
    const engine = this.engine;
    // The conversation this reply belongs to, even if another one is opened while it streams.
    const conv = this.conv;
    if (!engine || this.running) return;
    const controller = new AbortController();
    this.running = controller;
    this.send.disabled = true;
    this.stop.disabled = false;
    conv.messages.push(reply);
    this.renderMessages();
    let root = this.messages.lastElementChild as HTMLElement;
    root.setAttribute('aria-busy', 'true');
    root.querySelector('.message-actions')?.replaceChildren();
    const started = performance.now();
    let frame = 0;
    const show = (tokens: number) => {
      const seconds = (performance.now() - started) / 1000;
      this.stats.textContent = `${tokens} tokens, ${(tokens / Math.max(seconds, 1e-3)).toFixed(1)} tokens/s`;
      // One render per frame: a Markdown reply is re-rendered whole, so a fast stream must not re-render per token.
      frame ||= requestAnimationFrame(() => {
        frame = 0;
        this.renderReplyBody(root, reply);
      });
    };
    try {
      const r = await generate(engine, controller.signal, show);
      const seconds = (performance.now() - started) / 1000;
      // The engine's counters of this request: how full the context is, and chat turns left out to fit it.
      const st = engine.stats();
      reply.finish = r.finish;
      reply.meta =
        `${r.tokens} tokens in ${seconds.toFixed(1)} s, ${r.rate.toFixed(1)} tokens/s` +
        (r.finish === 'abort' ? ' (stopped)' : r.finish === 'length' ? ' (max tokens reached)' : '') +
        (st.droppedMessages > 0 ? `; the oldest ${st.droppedMessages} messages were left out to fit the context` : '');
      conv.contextUsed = st.contextTokens;
      conv.contextSize = st.contextLength;
      this.stats.textContent = reply.meta;
      clearBanner();
    } catch (e) {
      conv.messages.pop();
      root.remove();
      root = el('div', { class: 'message error', 'data-role': 'error', role: 'alert', text: describeError(e) });
    } finally {
      cancelAnimationFrame(frame);
      this.running = null;
      this.send.disabled = !this.engine;
      this.stop.disabled = true;
    }
    await this.save(conv);
    if (conv !== this.conv) return;
    const error = root.dataset.role === 'error' ? root : null;
    this.renderMessages();
    if (error) this.messages.append(error);
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  private renderReplyBody(root: HTMLElement, reply: Reply): void {
    const body = root.querySelector('.body')!;
    if (reply.role === 'document') body.querySelector('.continuation')!.textContent = reply.content;
    else body.replaceChildren(renderMarkdown(reply.content));
    this.messages.scrollTop = this.messages.scrollHeight;
  }
}

/** Copies `text` and says so on the button for a moment. */
async function copyText(button: HTMLButtonElement, text: string): Promise<void> {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => (button.textContent = label), 1500);
}
