/**
 * Test strings for tokenizer equivalence: the cases SentencePiece treats specially (leading and repeated
 * spaces, newlines, tabs, control characters, byte fallback for characters outside the vocab) plus seeded
 * random mixes and long inputs.
 */
import { rng } from './load.ts';

export const HAND_PICKED: string[] = [
  '',
  ' ',
  '  ',
  '     ',
  'Hello world',
  ' Hello world',
  '  Hello  world  ',
  'Hello\nworld',
  '\n\nHello\n\n\nworld\n',
  '\tindented\twith\ttabs\t',
  ' \t \n \r\n mixed whitespace ',
  'line one\r\nline two\rline three',
  'The quick brown fox jumps over the lazy dog.',
  'naïve café résumé Ångström Øresund façade jalapeño',
  'Führer Straße Mädchen Œuvre',
  '日本語のテキストです。東京は大きい都市です。',
  '我想在apple工作1314151天～',
  '한국어 문장입니다',
  'مرحبا بالعالم، هذا نص عربي',
  'שלום עולם, זה טקסט בעברית',
  'Здравствуй, мир! нещо на Български',
  'ελληνικά κείμενα',
  'हिन्दी पाठ देवनागरी',
  'កាន់តែពិសេសអាចខលចេញ',
  '😀😃😄 🦙 🚀 (normal) 😶\u200d🌫️ ✅ 👩‍👩‍👧‍👦 🇺🇸 🏳️‍🌈',
  'emoji🦙inside🦙words',
  '\u0000\u0001\u0002\u0007\u0008\u000b\u000c\u001b\u001f\u007f',
  'a\u0000b', // NUL inside text is a byte like any other
  'zero\u200bwidth\u200cjoiner\u200d and BOM \ufeff and soft\u00adhyphen',
  'combining e\u0301 vs precomposed \u00e9, Hangul jamo \u1100\u1161',
  'ligature \ufb01 fullwidth ＡＢＣ１２３ halfwidth ｶﾀｶﾅ',
  '\u{10ffff} private \ue000 \u{1f9ff} astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'function add(a, b) {\n  return a + b;\n}\n',
  'def main():\n    for i in range(10):\n        print(f"{i:>3}")\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  '<div class="x">&amp; &lt;tag&gt;</div>',
  'SELECT * FROM users WHERE id = 1 AND name LIKE \'%o%\';',
  '0 1 2 3 4 5 6 7 8 9 10 100 1000 1,000,000 3.14159 -2.5e-10 0x1F 0b1010',
  '333333333 1234567890123456789',
  '!!!!!! ?????? ...... ------======= \'\'\'\'\'\' ``````` """"',
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  '\u2581 literal lower-one-eighth block \u2581\u2581 and <0x41> <s> </s> <unk> as text',
];

// Fragments random strings are built from: words, whitespace runs, scripts and symbols the vocab covers
// partly or not at all (so byte fallback is exercised), and digits.
const FRAGMENTS = [
  'the', ' the', 'Hello', 'world', 'token', 'izer', 'ing', 'un', 'believ', 'able', ' ', '  ', '   ', '\n', '\n\n',
  '\t', '\r\n', '.', ',', '!', '?', '"', "'", '(', ')', '{', '}', '=>', '0', '7', '42', '2024', '3.5',
  'é', 'ü', 'ñ', 'ø', 'ß', '日本', '語', '中文', '한', 'ب', 'ש', 'Ж', 'λ', 'अ', 'ក', '😀', '🦙', '👍🏽', '\u200d',
  '\u0000', '\u0003', '\u007f', '\ufeff', '\u2581', '∑', '≠', '→', '€', '£', '©', '™', '\u00a0', '\u3000',
];

/** `count` random strings of up to `maxParts` fragments, the same for a given seed. */
export function randomStrings(seed: number, count: number, maxParts = 24): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const parts = 1 + Math.floor(r() * maxParts);
    let s = '';
    for (let k = 0; k < parts; k++) s += FRAGMENTS[Math.floor(r() * FRAGMENTS.length)];
    out.push(s);
  }
  return out;
}

/** Long inputs (over 10,000 characters): prose, code and a random mix. */
export function longStrings(): string[] {
  const prose = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ';
  const code = 'for (let i = 0; i < n; i++) {\n\tsum += values[i] * 0.5;\n}\n';
  return [prose.repeat(120), code.repeat(200), randomStrings(7, 1, 4000)[0], ' '.repeat(10_001), '🦙'.repeat(5000)];
}

/** Everything above: what the equivalence tests tokenize. */
export function corpus(): string[] {
  return [...HAND_PICKED, ...randomStrings(1, 300), ...longStrings()];
}
