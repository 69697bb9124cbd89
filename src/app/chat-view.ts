/**
 * The chat: the conversation, the composer with send and stop, the sampling settings, and the tokens-per-second
 * line. Assistant text streams into its message element through textContent only.
 */
import type { ChatMessage } from '../generate/chat-template.ts';
import type { WorkerEngine } from '../worker/client.ts';
import { byId, el } from './dom.ts';
import { describeError } from './errors-view.ts';

export interface Settings {
  mode: 'chat' | 'completion';
  system: string;
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number | undefined;
}

function num(id: string, fallback: number): number {
  const v = byId<HTMLInputElement>(id).valueAsNumber;
  return Number.isFinite(v) ? v : fallback;
}

export class ChatView {
  private engine: WorkerEngine | null = null;
  private chatTemplate: 'llama-2' | 'none' = 'none';
  private history: ChatMessage[] = [];
  private running: AbortController | null = null;
  private readonly messages = byId('messages');
  private readonly prompt = byId<HTMLTextAreaElement>('prompt');
  private readonly send = byId<HTMLButtonElement>('send');
  private readonly stop = byId<HTMLButtonElement>('stop');
  private readonly stats = byId('stats');

  constructor() {
    byId<HTMLFormElement>('composer').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    this.prompt.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        void this.submit();
      }
    });
    this.stop.addEventListener('click', () => this.running?.abort());
    byId('mode').addEventListener('change', () => this.updatePlaceholder());
    byId('clear').addEventListener('click', () => {
      this.history = [];
      this.messages.replaceChildren();
      this.stats.textContent = '';
    });
  }

  /** Attaches a loaded engine (or detaches with null) and enables the composer. */
  setEngine(engine: WorkerEngine | null, chatTemplate: 'llama-2' | 'none' = 'none'): void {
    this.running?.abort();
    this.engine = engine;
    this.chatTemplate = chatTemplate;
    this.prompt.disabled = this.send.disabled = !engine;
    this.updatePlaceholder();
  }

  private updatePlaceholder(): void {
    this.prompt.placeholder = !this.engine
      ? 'Choose a model to start.'
      : this.settings().mode === 'chat'
        ? 'Message (Enter to send, Shift+Enter for a new line)'
        : 'Beginning of a text to continue (empty: the model starts on its own)';
  }

  settings(): Settings {
    const modeChoice = byId<HTMLSelectElement>('mode').value;
    const mode = modeChoice === 'chat' || modeChoice === 'completion' ? modeChoice : this.chatTemplate === 'llama-2' ? 'chat' : 'completion';
    const seedText = byId<HTMLInputElement>('seed').value;
    return {
      mode,
      system: byId<HTMLTextAreaElement>('system').value.trim(),
      temperature: Math.max(0, num('temperature', 0.8)),
      topP: Math.min(1, Math.max(0, num('top-p', 0.95))),
      maxTokens: Math.max(1, Math.round(num('max-tokens', 256))),
      seed: seedText === '' ? undefined : Math.round(Number(seedText)),
    };
  }

  private addMessage(role: 'user' | 'assistant' | 'error', text: string): { root: HTMLDivElement; body: HTMLSpanElement; meta: HTMLSpanElement } {
    const body = el('span', { class: 'body', text });
    const meta = el('span', { class: 'meta' });
    const root = el('div', { class: `message ${role}`, 'data-role': role }, body, meta);
    this.messages.querySelector('.empty-hint')?.remove();
    this.messages.append(root);
    this.messages.scrollTop = this.messages.scrollHeight;
    return { root, body, meta };
  }

  private async submit(): Promise<void> {
    const engine = this.engine;
    if (!engine || this.running) return;
    const s = this.settings();
    const text = this.prompt.value;
    if (s.mode === 'chat' && !text.trim()) return;
    this.prompt.value = '';
    if (text) this.addMessage('user', text);
    const reply = this.addMessage('assistant', '');
    reply.root.setAttribute('aria-busy', 'true');
    const controller = new AbortController();
    this.running = controller;
    this.send.disabled = true;
    this.stop.disabled = false;
    const started = performance.now();
    let tokens = 0;
    let out = '';
    const sampling = { temperature: s.temperature, seed: s.seed };
    try {
      let finish: string | null = null;
      let decodeRate = 0;
      if (s.mode === 'chat') {
        const messages: ChatMessage[] = [...(s.system ? [{ role: 'system' as const, content: s.system }] : []), ...this.history, { role: 'user', content: text }];
        const stream = await engine.chat.completions.create({
          messages, stream: true, top_p: s.topP, max_tokens: s.maxTokens, signal: controller.signal, ...sampling,
        });
        for await (const chunk of stream) {
          const c = chunk.choices[0];
          if (c.delta.content) {
            out += c.delta.content;
            tokens++;
            reply.body.textContent = out;
            this.showLive(tokens, started);
          }
          if (c.finish_reason) finish = c.finish_reason;
          if (chunk.usage) {
            tokens = chunk.usage.completion_tokens;
            decodeRate = chunk.usage.extra.decode_tokens_per_s;
          }
        }
        this.history.push({ role: 'user', content: text }, { role: 'assistant', content: out });
      } else {
        const run = engine.generate(text, { topP: s.topP, maxTokens: s.maxTokens, signal: controller.signal, ...sampling });
        const ids: number[] = [];
        for await (const d of run) {
          out += d.text;
          tokens += d.tokenIds.length;
          ids.push(...d.tokenIds);
          reply.body.textContent = out;
          this.showLive(tokens, started);
        }
        const stats = await run.result;
        tokens = stats.generatedTokens;
        decodeRate = stats.decodeTokensPerSecond;
        finish = stats.finishReason;
        // The generated token ids, for inspecting how the tokenizer split the text.
        reply.root.dataset.tokenIds = ids.join(',');
      }
      const seconds = (performance.now() - started) / 1000;
      const line = `${tokens} tokens in ${seconds.toFixed(1)} s, ${decodeRate.toFixed(1)} tokens/s${finish === 'abort' ? ' (stopped)' : finish === 'length' ? ' (max tokens reached)' : ''}`;
      reply.meta.textContent = line;
      reply.root.dataset.finish = finish ?? 'stop';
      this.stats.textContent = line;
    } catch (e) {
      reply.root.remove();
      this.addMessage('error', describeError(e));
    } finally {
      reply.root.removeAttribute('aria-busy');
      this.running = null;
      this.send.disabled = !this.engine;
      this.stop.disabled = true;
    }
  }

  /** Live token rate while streaming; keeps the newest text in view. */
  private showLive(tokens: number, started: number): void {
    this.messages.scrollTop = this.messages.scrollHeight;
    const seconds = (performance.now() - started) / 1000;
    this.stats.textContent = `${tokens} tokens, ${(tokens / Math.max(seconds, 1e-3)).toFixed(1)} tokens/s`;
  }
}
