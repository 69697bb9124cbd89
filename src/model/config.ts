/** Hyperparameters of a Llama 2 model, as stored in a package manifest (names follow llama2.c). */
export interface ModelConfig {
  /** Transformer width (4096 for 7B). */
  dim: number;
  /** SwiGLU hidden width (11008 for 7B). */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; less than nHeads under grouped-query attention (8 for 70B). */
  nKvHeads: number;
  vocabSize: number;
  /** Longest context the model was trained for (4096 for Llama 2). */
  maxSeqLen: number;
  /** RMSNorm epsilon (1e-5 for Llama 2). */
  normEps: number;
  /** RoPE base frequency (10000 for Llama 2). */
  ropeTheta: number;
  /** Linear RoPE scaling factor: positions are divided by it (1 = none). */
  ropeScale: number;
  /** Rotary dimensions per head; equals headDim for Llama 2. */
  ropeDims?: number;
  bosId: number;
  eosId: number;
  /** Prompt template for chat: 'llama-2' ([INST] / <<SYS>>) or 'none' (plain completion only). */
  chatTemplate: 'llama-2' | 'none';
}

export function headDim(c: ModelConfig): number {
  return c.dim / c.nHeads;
}

export function kvDim(c: ModelConfig): number {
  return (c.dim / c.nHeads) * c.nKvHeads;
}

/** Floats of a token's q, k and v side by side (RunState.qkv). */
export function qkvDim(c: ModelConfig): number {
  return c.dim + 2 * kvDim(c);
}
