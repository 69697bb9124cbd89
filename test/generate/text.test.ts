// Chat prompt format, stop strings and step seeds: the CPU side of generation.
import { describe, expect, it } from 'vitest';
import { llama2ChatPromptIds } from '../../src/generate/chat-template.ts';
import { ChatFormatError } from '../../src/errors.ts';
import { stepSeed } from '../../src/generate/generate.ts';
import { StopMatcher } from '../../src/generate/stop.ts';

// The user text is stripped as a whole after the system block is prepended, as in Meta's reference, so the
// inner leading space of " Hi " survives.
// A stand-in encoder that keeps the text visible: one "id" per character code.
const enc = (t: string) => [...t].map((ch) => ch.codePointAt(0)!);
const dec = (ids: number[]) => ids.map((i) => (i === 1 ? '<s>' : i === 2 ? '</s>' : String.fromCodePoint(i))).join('');

describe('llama-2 chat template', () => {
  it('formats system, several turns and the open user turn as Meta reference chat_completion does', () => {
    const ids = llama2ChatPromptIds(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: ' Hi ' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Tell me a story.' },
      ],
      enc,
      1,
      2,
    );
    expect(dec(ids)).toBe(
      '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello! </s><s>[INST] Tell me a story. [/INST]',
    );
  });

  it('needs the last message from the user and alternating roles', () => {
    expect(() => llama2ChatPromptIds([{ role: 'assistant', content: 'x' }], enc, 1, 2)).toThrow(ChatFormatError);
    expect(() =>
      llama2ChatPromptIds(
        [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
        enc,
        1,
        2,
      ),
    ).toThrow(ChatFormatError);
    expect(() => llama2ChatPromptIds([], enc, 1, 2)).toThrow(ChatFormatError);
  });

  it('never turns typed "</s>" into the EOS id', () => {
    const ids = llama2ChatPromptIds([{ role: 'user', content: '</s>' }], enc, 1, 2);
    expect(ids.filter((i) => i === 2)).toEqual([]);
  });
});

describe('stop strings', () => {
  it('cuts before the stop string even when it arrives split across pushes', () => {
    const m = new StopMatcher(['\nUser:']);
    let out = '';
    for (const piece of ['Hello', ' there', '\nUs', 'er', ': more']) out += m.push(piece);
    out += m.flush();
    expect(out).toBe('Hello there');
    expect(m.stopped).toBe(true);
  });

  it('releases held-back text that turned out not to be a stop', () => {
    const m = new StopMatcher(['END']);
    expect(m.push('the EN')).toBe('the ');
    expect(m.push('D-less')).toBe('');
    const m2 = new StopMatcher(['END']);
    expect(m2.push('the EN') + m2.push('x') + m2.flush()).toBe('the ENx');
  });
});

describe('step seeds', () => {
  it('are deterministic and differ across steps and seeds', () => {
    expect(stepSeed(42, 3)).toBe(stepSeed(42, 3));
    const seen = new Set<number>();
    for (let s = 0; s < 10; s++) for (let i = 0; i < 100; i++) seen.add(stepSeed(s, i));
    expect(seen.size).toBe(1000);
  });
});
