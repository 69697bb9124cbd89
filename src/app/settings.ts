/**
 * The settings panel: mode, system prompt and sampling. Values are kept in localStorage, so they survive a reload.
 */
import { byId } from './dom.ts';

export interface Settings {
  /** 'auto' follows the model: chat when it has a chat template, plain completion otherwise. */
  mode: 'auto' | 'chat' | 'completion';
  system: string;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  maxTokens: number;
  seed: number | undefined;
}

const STORAGE_KEY = 'llama-webgpu.settings';
const FIELDS = ['mode', 'system', 'temperature', 'top-p', 'top-k', 'repetition-penalty', 'frequency-penalty', 'presence-penalty', 'max-tokens', 'seed'];

type Field = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

function num(id: string, fallback: number, min: number, max: number): number {
  const v = byId<HTMLInputElement>(id).valueAsNumber;
  return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
}

export function readSettings(): Settings {
  const mode = byId<HTMLSelectElement>('mode').value;
  const seedText = byId<HTMLInputElement>('seed').value;
  return {
    mode: mode === 'chat' || mode === 'completion' ? mode : 'auto',
    system: byId<HTMLTextAreaElement>('system').value.trim(),
    temperature: num('temperature', 0.8, 0, 2),
    topP: num('top-p', 0.95, 0, 1),
    topK: Math.round(num('top-k', 40, 0, 1e6)),
    repetitionPenalty: num('repetition-penalty', 1, 0.01, 10),
    frequencyPenalty: num('frequency-penalty', 0, -2, 2),
    presencePenalty: num('presence-penalty', 0, -2, 2),
    maxTokens: Math.round(num('max-tokens', 256, 1, 1e6)),
    seed: seedText === '' ? undefined : Math.round(Number(seedText)),
  };
}

/** Restores the saved values into the panel and saves each change. */
export function persistSettings(onChange: () => void): void {
  let saved: Record<string, string> = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as Record<string, string>;
  } catch {
    saved = {};
  }
  for (const id of FIELDS) {
    const field = byId<Field>(id);
    if (typeof saved[id] === 'string') field.value = saved[id];
    field.addEventListener('change', () => {
      const values: Record<string, string> = {};
      for (const f of FIELDS) values[f] = byId<Field>(f).value;
      localStorage.setItem(STORAGE_KEY, JSON.stringify(values));
      onChange();
    });
  }
}
