// Checks of the public API's arguments: each refusal is an InvalidOptionsError that names the option.
import { describe, expect, it } from 'vitest';
import { InvalidOptionsError, LlamaWebGpuError } from '../../src/errors.ts';
import { CHAT_OPTION_NAMES, validateChatRequest, validateGenerateOptions, validateLoadOptions, validatePrompt } from '../../src/generate/validate.ts';

function refusal(call: () => unknown): InvalidOptionsError {
  try {
    call();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidOptionsError);
    expect(e).toBeInstanceOf(LlamaWebGpuError);
    expect((e as InvalidOptionsError).code).toBe('INVALID_OPTIONS');
    return e as InvalidOptionsError;
  }
  throw new Error('expected an InvalidOptionsError');
}

describe('generate options', () => {
  it('takes one stop string as a whole and keeps a list as it is', () => {
    expect(validateGenerateOptions({ stop: 'Lily' }).stop).toEqual(['Lily']);
    expect(validateGenerateOptions({ stop: ['a', 'bc'] }).stop).toEqual(['a', 'bc']);
    expect(validateGenerateOptions({ maxTokens: 0, seed: -3, stopTokenIds: [0, 511] }, 512)).toMatchObject({ maxTokens: 0, seed: -3 });
    expect(validateGenerateOptions({ maxTokens: Infinity }).maxTokens).toBe(Infinity);
  });

  it.each([
    ['maxTokens', { maxTokens: -1 }, 'an integer >= 0'],
    ['maxTokens', { maxTokens: NaN }, 'got NaN'],
    ['maxTokens', { maxTokens: -Infinity }, 'got -Infinity'],
    ['seed', { seed: NaN }, 'an integer'],
    ['stopTokenIds[0]', { stopTokenIds: [0.5] }, '0..511'],
    ['stopTokenIds[1]', { stopTokenIds: [2, 512] }, '0..511'],
    ['stopTokenIds', { stopTokenIds: 2 }, 'an array of token ids'],
    ['stop[0]', { stop: [null] }, 'a string, got null'],
    ['stop', { stop: 5 }, 'a string or an array of strings'],
    ['temperature', { temperature: NaN }, '>= 0'],
    ['topP', { topP: 0 }, '(0, 1]'],
    ['logitBias key', { logitBias: { 600: 1 } }, '0..511'],
  ])('refuses %s in %o', (option, options, valid) => {
    const e = refusal(() => validateGenerateOptions(options as never, 512));
    expect(e.option).toBe(option);
    expect(e.message).toContain(`${option}: must be`);
    expect(e.message).toContain(valid);
  });

  it('names options as a chat request spells them', () => {
    expect(refusal(() => validateGenerateOptions({ maxTokens: -1 }, 512, CHAT_OPTION_NAMES)).option).toBe('max_tokens');
  });

  it('refuses a prompt that is neither text nor token ids', () => {
    for (const p of [5, undefined, null, { text: 'x' }]) expect(refusal(() => validatePrompt(p)).option).toBe('prompt');
    expect(refusal(() => validatePrompt([1, -2], 512)).option).toBe('prompt[1]');
    expect(() => validatePrompt('Once', 512)).not.toThrow();
  });
});

describe('load options', () => {
  it.each([
    ['contextLength', { contextLength: NaN }],
    ['contextLength', { contextLength: 0 }],
    ['contextLength', { contextLength: -1 }],
    ['prefillChunk', { prefillChunk: NaN }],
    ['prefillChunk', { prefillChunk: 1.5 }],
  ])('refuses %s in %o', (option, extra) => {
    const e = refusal(() => validateLoadOptions({ model: 'm', ...extra }, false));
    expect(e.option).toBe(option);
    expect(e.message).toContain('a positive integer');
  });

  it('needs a model id, and a store for createEngine', () => {
    expect(refusal(() => validateLoadOptions({}, false)).option).toBe('model');
    expect(refusal(() => validateLoadOptions({ model: 'm' }, true)).option).toBe('store');
    expect(refusal(() => validateLoadOptions(undefined, true)).option).toBe('options');
  });
});

describe('chat requests', () => {
  it('joins the text parts of an OpenAI content array', () => {
    const { messages } = validateChatRequest({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me ' }, { type: 'text', text: 'a story.' }] }],
    });
    expect(messages).toEqual([{ role: 'user', content: 'Tell me a story.' }]);
  });

  it.each([
    ['messages', {}],
    ['messages', { messages: 'Hi' }],
    ['messages[0]', { messages: [null] }],
    ['messages[0].role', { messages: [{ role: 'robot', content: 'Hi' }] }],
    ['messages[0].content', { messages: [{ role: 'user', content: 5 }] }],
    ['messages[0].content', { messages: [{ role: 'user', content: null }] }],
    ['messages[0].content', { messages: [{ role: 'user' }] }],
    ['messages[0].content[1]', { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'x' } }] }] }],
    ['stream', { messages: [], stream: 'yes' }],
    ['request', null],
  ])('refuses %s in %o', (option, req) => {
    expect(refusal(() => validateChatRequest(req)).option).toBe(option);
  });
});
