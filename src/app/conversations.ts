/**
 * Saved conversations: one record per conversation in the IndexedDB database "llama-webgpu-chats" (object store
 * "conversations", keyed by id), apart from the model store so deleting a model never touches the chats.
 */
import { createStore, del, get, set, values, type UseStore } from 'idb-keyval';

/** A chat turn, or in completion mode one document: the prompt and the model's continuation of it. */
export type StoredMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; meta?: string; finish?: string }
  | { role: 'document'; prompt: string; content: string; meta?: string; finish?: string; tokenIds?: number[] };

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: StoredMessage[];
  /** Tokens of context the conversation filled at its last reply (prompt and reply), and of how many. */
  contextUsed?: number;
  contextSize?: number;
}

export const CHATS_DB = 'llama-webgpu-chats';

export class ConversationStore {
  private readonly db: UseStore;

  constructor(dbName = CHATS_DB) {
    this.db = createStore(dbName, 'conversations');
  }

  /** All conversations, the most recently changed first. */
  async list(): Promise<Conversation[]> {
    return (await values<Conversation>(this.db)).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  get(id: string): Promise<Conversation | undefined> {
    return get<Conversation>(id, this.db);
  }

  save(c: Conversation): Promise<void> {
    return set(c.id, c, this.db);
  }

  delete(id: string): Promise<void> {
    return del(id, this.db);
  }
}

export function newConversation(): Conversation {
  const now = Date.now();
  return { id: `${now.toString(36)}-${Math.random().toString(36).slice(2, 10)}`, title: 'New conversation', createdAt: now, updatedAt: now, messages: [] };
}

/** A title from the first thing written: its first line, cut at a word near 48 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0].trim();
  if (line.length <= 48) return line || 'Untitled';
  const cut = line.slice(0, 48);
  const space = cut.lastIndexOf(' ');
  return `${space > 24 ? cut.slice(0, space) : cut}…`;
}
