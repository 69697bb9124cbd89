/** Browser test worker: the tokenizer where neither `document` nor `window` exists. */
import { tokenizeAll } from './tokenize-all.ts';

self.onmessage = async (e: MessageEvent<{ modelUrl: string; texts: string[] }>) => {
  try {
    self.postMessage({ result: await tokenizeAll(e.data.modelUrl, e.data.texts) });
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
