// Embedding llama-webgpu: install a model package into IndexedDB once, load it in a worker, stream a story.
import { createIdbStore, installFromUrl } from 'llama-webgpu';
import { createWorkerEngine } from 'llama-webgpu/worker';

const out = document.getElementById('out')!;
await installFromUrl(createIdbStore(), '/models/stories260K/'); // returns at once when already installed
const engine = await createWorkerEngine({ model: 'stories260K' });
const story = engine.generate('Once upon a time', { maxTokens: 60, temperature: 0 });
for await (const delta of story) out.textContent += delta.text; // text only, never HTML
out.dataset.done = String((await story.result).generatedTokens);
