/**
 * The page's wording of library errors (src/app/errors-view.ts): messages written for the command line name its
 * flags, and the page says what to do in the page instead.
 */
import { describe, expect, test } from 'vitest';
import { browserWording } from '../../src/app/errors-view.ts';

describe('browser wording of library errors', () => {
  test('command-line flags become what to do on the page', () => {
    const cases: [string, string][] = [
      [
        'stories260K.bin (tokenizer): the checkpoint has no tokenizer; pass the tokenizer.model or tokenizer.bin that belongs to it (--tokenizer)',
        'stories260K.bin (tokenizer): the checkpoint has no tokenizer; pass the tokenizer.model or tokenizer.bin that belongs to it (pick or drop it together with the weights)',
      ],
      [
        'm (tokenizer.model): tokenizer.model is missing; put the SentencePiece tokenizer.model beside the weights or pass it with --tokenizer',
        'm (tokenizer.model): tokenizer.model is missing; put the SentencePiece tokenizer.model beside the weights or pick or drop it together with the weights',
      ],
      [
        "L0.wq is F32; --quant keep keeps a GGUF's own blocks, so use --quant q4, q8, f16 or f32 for this checkpoint",
        "L0.wq is F32; weight format keep keeps a GGUF's own blocks, so use weight format q4, q8, f16 or f32 for this checkpoint",
      ],
    ];
    for (const [cli, page] of cases) {
      expect(browserWording(cli)).toBe(page);
      expect(browserWording(cli)).not.toMatch(/--\\w/);
    }
  });

  test('other messages are left as they are', () => {
    expect(browserWording('Storage is full.')).toBe('Storage is full.');
  });
});
