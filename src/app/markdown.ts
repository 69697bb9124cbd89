/**
 * A small Markdown renderer for model replies that never parses HTML: the text is split into a tree of blocks and
 * inline spans (parseMarkdown, plain data, testable without a DOM), and renderMarkdown builds DOM nodes from that
 * tree with createElement and textContent. A model that writes `<script>` or `<img onerror=...>` shows those
 * characters; nothing it writes becomes markup, and links are made only for http(s) and mailto URLs.
 *
 * The subset is what chat models write: fenced code blocks (an unclosed fence runs to the end, so a reply that is
 * still streaming renders as code), headings, paragraphs with line breaks, bullet and numbered lists, block quotes,
 * rules, `code`, **strong**, *emphasis* and [links](https://...). Anything else stays literal text.
 */

export type Inline =
  | { type: 'text'; text: string }
  | { type: 'code'; text: string }
  | { type: 'strong' | 'em'; children: Inline[] }
  | { type: 'link'; href: string; children: Inline[] }
  | { type: 'break' };

export type Block =
  | { type: 'code'; lang: string; text: string }
  | { type: 'heading'; level: number; children: Inline[] }
  | { type: 'paragraph'; children: Inline[] }
  | { type: 'list'; ordered: boolean; start: number; items: Inline[][] }
  | { type: 'quote'; blocks: Block[] }
  | { type: 'rule' };

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^ {0,3}([-*+]|(\d{1,9})[.)])\s+(.*)$/;

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

export function parseMarkdown(src: string): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const close = new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
      const body: string[] = [];
      i++;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence, or past the end
      blocks.push({ type: 'code', lang: fence[2], text: body.join('\n') });
      continue;
    }
    if (line.trim() === '') {
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      blocks.push({ type: 'heading', level: heading[1].length, children: parseInline(heading[2]) });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      blocks.push({ type: 'rule' });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].replace(QUOTE, ''));
      blocks.push({ type: 'quote', blocks: parseMarkdown(body.join('\n')) });
      continue;
    }
    const item = ITEM.exec(line);
    if (item) {
      const ordered = item[2] !== undefined;
      const items: string[][] = [];
      while (i < lines.length) {
        const m = ITEM.exec(lines[i]);
        if (m && (m[2] !== undefined) === ordered) {
          items.push([m[3]]);
          i++;
        } else if (lines[i].trim() !== '' && !startsBlock(lines[i])) {
          items[items.length - 1].push(lines[i++].trim());
        } else if (lines[i].trim() === '' && i + 1 < lines.length && ITEM.test(lines[i + 1]) && (ITEM.exec(lines[i + 1])![2] !== undefined) === ordered) {
          i++;
        } else break;
      }
      blocks.push({ type: 'list', ordered, start: ordered ? Number(item[2]) : 1, items: items.map((t) => parseInline(t.join('\n'))) });
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i].trim() !== '' && (para.length === 0 || !startsBlock(lines[i]))) para.push(lines[i++]);
    blocks.push({ type: 'paragraph', children: parseInline(para.join('\n')) });
  }
  return blocks;
}

/** The link targets a reply may open: absolute http(s) and mailto URLs. */
export function safeHref(href: string): string | null {
  try {
    const url = new URL(href);
    return url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Where the emphasis opened by `delim` at `from` closes: not after a space, and for `_` not inside a word. */
function findClose(s: string, delim: string, from: number): number {
  for (let j = s.indexOf(delim, from + 1); j > from; j = s.indexOf(delim, j + 1)) {
    if (s[j - 1] === ' ' || s[j - 1] === '\n') continue;
    if (delim.length === 1 && s[j + 1] === delim) {
      j++;
      continue;
    }
    if (delim[0] === '_' && /\w/.test(s[j + delim.length] ?? '')) continue;
    return j;
  }
  return -1;
}

export function parseInline(s: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ type: 'text', text });
    text = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && /[\\`*_[\]()#>+\-.!~]/.test(s[i + 1] ?? '')) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      let n = 1;
      while (s[i + n] === '`') n++;
      const ticks = '`'.repeat(n);
      const end = s.indexOf(ticks, i + n);
      if (end > i + n) {
        flush();
        out.push({ type: 'code', text: s.slice(i + n, end).replace(/^ (.+) $/s, '$1') });
        i = end + n;
      } else {
        text += ticks;
        i += n;
      }
      continue;
    }
    if (c === '*' || c === '_') {
      const delim = s[i + 1] === c ? c + c : c;
      const next = s[i + delim.length] ?? ' ';
      const opens = next !== ' ' && next !== '\n' && !(c === '_' && /\w/.test(s[i - 1] ?? ''));
      const end = opens ? findClose(s, delim, i + delim.length - 1) : -1;
      if (end > i + delim.length) {
        flush();
        out.push({ type: delim.length === 2 ? 'strong' : 'em', children: parseInline(s.slice(i + delim.length, end)) });
        i = end + delim.length;
      } else {
        text += delim;
        i += delim.length;
      }
      continue;
    }
    if (c === '[') {
      const m = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(s.slice(i));
      const href = m && safeHref(m[2]);
      if (m && href) {
        flush();
        out.push({ type: 'link', href, children: parseInline(m[1]) });
        i += m[0].length;
        continue;
      }
    }
    if (c === '\n') {
      flush();
      out.push({ type: 'break' });
      i++;
      continue;
    }
    text += c;
    i++;
  }
  flush();
  return out;
}

function renderInline(parent: Node, inlines: Inline[]): void {
  for (const n of inlines) {
    if (n.type === 'text') parent.appendChild(document.createTextNode(n.text));
    else if (n.type === 'break') parent.appendChild(document.createElement('br'));
    else if (n.type === 'code') {
      const code = document.createElement('code');
      code.textContent = n.text;
      parent.appendChild(code);
    } else if (n.type === 'link') {
      const a = document.createElement('a');
      a.href = n.href;
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      renderInline(a, n.children);
      parent.appendChild(a);
    } else {
      const e = document.createElement(n.type);
      renderInline(e, n.children);
      parent.appendChild(e);
    }
  }
}

function renderBlocks(parent: Node, blocks: Block[]): void {
  for (const b of blocks) {
    if (b.type === 'code') {
      const wrap = document.createElement('div');
      wrap.className = 'code-block';
      const head = document.createElement('div');
      head.className = 'code-head';
      const lang = document.createElement('span');
      lang.textContent = b.lang || 'code';
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'secondary small';
      copy.dataset.action = 'copy-code';
      copy.textContent = 'Copy';
      copy.setAttribute('aria-label', `Copy ${b.lang || 'code'} block`);
      head.append(lang, copy);
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      code.textContent = b.text;
      pre.appendChild(code);
      wrap.append(head, pre);
      parent.appendChild(wrap);
    } else if (b.type === 'rule') parent.appendChild(document.createElement('hr'));
    else if (b.type === 'quote') {
      const q = document.createElement('blockquote');
      renderBlocks(q, b.blocks);
      parent.appendChild(q);
    } else if (b.type === 'list') {
      const list = document.createElement(b.ordered ? 'ol' : 'ul');
      if (b.ordered && b.start !== 1) (list as HTMLOListElement).start = b.start;
      for (const item of b.items) {
        const li = document.createElement('li');
        renderInline(li, item);
        list.appendChild(li);
      }
      parent.appendChild(list);
    } else {
      const e = document.createElement(b.type === 'heading' ? (`h${Math.min(6, b.level + 2)}` as 'h3') : 'p');
      renderInline(e, b.children);
      parent.appendChild(e);
    }
  }
}

/** DOM nodes for `text` read as Markdown; every piece of text goes in through text nodes. */
export function renderMarkdown(text: string): DocumentFragment {
  const frag = document.createDocumentFragment();
  renderBlocks(frag, parseMarkdown(text));
  return frag;
}
