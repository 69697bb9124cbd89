/** Loads tokenizer.model from the test server and encodes and decodes each text: what the browser test compares
 *  with Node. */
import { Tokenizer } from '../../../src/tokenizer/tokenizer.ts';

export interface Tokenized {
  ids: number[];
  text: string;
}

export async function tokenizeAll(modelUrl: string, texts: string[]): Promise<Tokenized[]> {
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const tokenizer = await Tokenizer.fromModelProto(bytes, 'tokenizer.model');
  return texts.map((t) => {
    const ids = tokenizer.encode(t);
    return { ids, text: tokenizer.decode(ids) };
  });
}
