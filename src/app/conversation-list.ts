/**
 * The conversations panel: the saved conversations, newest first, with open, rename and delete, and a button that
 * starts a new one.
 */
import type { Conversation } from './conversations.ts';
import { byId, el } from './dom.ts';

export interface ConversationListEvents {
  onOpen(id: string): void;
  onNew(): void;
  onRename(id: string, title: string): void;
  onDelete(id: string): void;
}

export class ConversationList {
  private readonly list = byId<HTMLUListElement>('conversations');

  constructor(private readonly events: ConversationListEvents) {
    byId('new-chat').addEventListener('click', () => events.onNew());
  }

  render(conversations: Conversation[], currentId: string | null): void {
    this.list.replaceChildren();
    if (conversations.length === 0) {
      this.list.append(el('li', { class: 'muted', text: 'No saved conversations yet.' }));
      return;
    }
    for (const c of conversations) {
      const current = c.id === currentId;
      const open = el('button', { type: 'button', class: 'link', text: c.title, 'data-action': 'open', 'aria-current': current ? 'true' : undefined, title: c.title });
      open.addEventListener('click', () => this.events.onOpen(c.id));
      // Short glyphs keep the title readable in a narrow panel; the labels say what they do.
      const rename = el('button', { type: 'button', class: 'secondary small', text: '✎', 'data-action': 'rename', 'aria-label': `Rename "${c.title}"`, title: 'Rename' });
      rename.addEventListener('click', () => {
        const title = prompt('Name of this conversation:', c.title)?.trim();
        if (title) this.events.onRename(c.id, title);
      });
      const del = el('button', { type: 'button', class: 'secondary small', text: '✕', 'data-action': 'delete', 'aria-label': `Delete "${c.title}"`, title: 'Delete' });
      del.addEventListener('click', () => {
        if (confirm(`Delete the conversation "${c.title}"?`)) this.events.onDelete(c.id);
      });
      this.list.append(el('li', { 'data-conversation-id': c.id, class: current ? 'active' : undefined }, open, el('span', { class: 'actions' }, rename, del)));
    }
  }
}
