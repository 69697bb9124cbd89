/**
 * `llama-webgpu/worker`: the engine in a Web Worker, with the API of createEngine(). Also exported from the main
 * entry; this entry lets an app load only the worker client on its main thread.
 */
export { createWorkerEngine, WorkerEngine, WorkerEngineTerminatedError } from './client.ts';
export type { WorkerEngineOptions } from './client.ts';
export { StoreWorkerClient } from './store-client.ts';
export type { StoreTaskOptions, TaskProgress } from './store-client.ts';
