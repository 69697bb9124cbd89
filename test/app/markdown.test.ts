/**
 * The page's Markdown parser (src/app/markdown.ts): the block and inline trees it builds for what chat models
 * write, and that markup-looking text stays text. The DOM side is covered in Chromium by test/browser/page-chat.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { parseInline, parseMarkdown, safeHref } from '../../src/app/markdown.ts';

describe('markdown parser', () => {
  test('fenced code keeps its text verbatim, and an unclosed fence (a reply still streaming) runs to the end', () => {
    expect(parseMarkdown('Here:\n```js\nconst a = 1 < 2 && "<b>";\n```\nDone.')).toEqual([
      { type: 'paragraph', children: [{ type: 'text', text: 'Here:' }] },
      { type: 'code', lang: 'js', text: 'const a = 1 < 2 && "<b>";' },
      { type: 'paragraph', children: [{ type: 'text', text: 'Done.' }] },
    ]);
    expect(parseMarkdown('```\nline 1\n**not bold**')).toEqual([{ type: 'code', lang: '', text: 'line 1\n**not bold**' }]);
  });

  test('headings, rules, quotes, bullet and numbered lists', () => {
    expect(parseMarkdown('# Title\n\n---\n> quoted *text*\n\n- one\n- two\n  more\n\n3. three\n4. four')).toEqual([
      { type: 'heading', level: 1, children: [{ type: 'text', text: 'Title' }] },
      { type: 'rule' },
      { type: 'quote', blocks: [{ type: 'paragraph', children: [{ type: 'text', text: 'quoted ' }, { type: 'em', children: [{ type: 'text', text: 'text' }] }] }] },
      { type: 'list', ordered: false, start: 1, items: [[{ type: 'text', text: 'one' }], [{ type: 'text', text: 'two' }, { type: 'break' }, { type: 'text', text: 'more' }]] },
      { type: 'list', ordered: true, start: 3, items: [[{ type: 'text', text: 'three' }], [{ type: 'text', text: 'four' }]] },
    ]);
  });

  test('inline code, strong, emphasis, escapes and line breaks', () => {
    expect(parseInline('a `x*y` **b _c_** \\*d\\* e\nf')).toEqual([
      { type: 'text', text: 'a ' },
      { type: 'code', text: 'x*y' },
      { type: 'text', text: ' ' },
      { type: 'strong', children: [{ type: 'text', text: 'b ' }, { type: 'em', children: [{ type: 'text', text: 'c' }] }] },
      { type: 'text', text: ' *d* e' },
      { type: 'break' },
      { type: 'text', text: 'f' },
    ]);
    // Not emphasis: a lone star, snake_case, a star before a space.
    expect(parseInline('2 * 3 = snake_case_name * x')).toEqual([{ type: 'text', text: '2 * 3 = snake_case_name * x' }]);
  });

  test('links only to http(s) and mailto; anything else stays literal text', () => {
    expect(parseInline('[docs](https://example.com/a?b=1)')).toEqual([{ type: 'link', href: 'https://example.com/a?b=1', children: [{ type: 'text', text: 'docs' }] }]);
    expect(parseInline('[x](javascript:alert(1))')).toEqual([{ type: 'text', text: '[x](javascript:alert(1))' }]);
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('data:text/html,<script>')).toBeNull();
    expect(safeHref('/relative')).toBeNull();
    expect(safeHref('mailto:a@b.c')).toBe('mailto:a@b.c');
  });

  test('HTML in the text is kept as text', () => {
    expect(parseMarkdown('<img src=x onerror="alert(1)"> <script>alert(2)</script>')).toEqual([
      { type: 'paragraph', children: [{ type: 'text', text: '<img src=x onerror="alert(1)"> <script>alert(2)</script>' }] },
    ]);
  });
});
