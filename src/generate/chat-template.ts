/**
 * The Llama 2 chat prompt format, as Meta's reference chat_completion builds it:
 *
 *   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user 1} [/INST] {assistant 1} </s><s>[INST] {user 2} [/INST]
 *
 * <s> and </s> are the BOS/EOS token ids, never text, so a user cannot inject them by typing "</s>".
 */
import { ChatFormatError } from '../errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const B_INST = '[INST]';
const E_INST = '[/INST]';
const B_SYS = '<<SYS>>\n';
const E_SYS = '\n<</SYS>>\n\n';

/** Token ids of a Llama 2 chat prompt ending with the last user message, ready for the assistant's reply. */
export function llama2ChatPromptIds(
  messages: ChatMessage[],
  encode: (text: string) => number[],
  bosId: number,
  eosId: number,
): number[] {
  let msgs = messages;
  if (msgs.length > 0 && msgs[0].role === 'system') {
    if (msgs.length < 2 || msgs[1].role !== 'user') throw new ChatFormatError('a system message must be followed by a user message');
    msgs = [{ role: 'user', content: B_SYS + msgs[0].content + E_SYS + msgs[1].content }, ...msgs.slice(2)];
  }
  if (msgs.length === 0 || msgs[msgs.length - 1].role !== 'user') {
    throw new ChatFormatError('the last message must be from the user (roles alternate user, assistant, user, ...)');
  }
  const ids: number[] = [];
  for (let i = 0; i < msgs.length; i += 2) {
    const user = msgs[i];
    const answer = msgs[i + 1];
    if (user.role !== 'user' || (answer && answer.role !== 'assistant')) {
      throw new ChatFormatError(`message ${i} must be "user" and ${i + 1} "assistant": roles must alternate after the system message`);
    }
    ids.push(bosId);
    if (answer) {
      ids.push(...encode(`${B_INST} ${user.content.trim()} ${E_INST} ${answer.content.trim()} `), eosId);
    } else {
      ids.push(...encode(`${B_INST} ${user.content.trim()} ${E_INST}`));
    }
  }
  return ids;
}
