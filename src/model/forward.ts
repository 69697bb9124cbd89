/**
 * The Llama 2 forward pass on the GPU. Every op is built and bound once here; a step only records dispatches
 * (nothing is allocated per token). It reads like llama2.c's forward():
 *
 *   x = embedding[token]
 *   for each layer:
 *     xb = rmsnorm(x, rmsAtt);  qkv = [wq; wk; wv] xb (one matvec);  rope(q, k) and cache k, v (one kernel)
 *     xb2 = attention(q, keyCache, valueCache);  x += wo xb2
 *     xb = rmsnorm(x, rmsFfn);  hb = silu(w1 xb) * (w3 xb) (one dispatch, but for the tiled prefill kernel: w1, then w3
 *     applying the gate);  x += w2 hb
 *   logits = wcls rmsnorm(x, rmsFinal);  next token = sample(logits)
 *
 * Decode (one token) uses the MatVec ops; prefill (many tokens) the MatMul ops (each picks its kernel for the adapter).
 * In decode every RMSNorm but the first is folded into the matvecs around it (FoldedNorm: wo and w2 write x * g and
 * partial sums of x^2 as they add into x, and wqkv, w1/w3 and wcls scale by 1 / rms), so a layer is six dispatches:
 * wqkv, rope, attention, wo, w1/w3 (SwiGLU), w2.
 */
import type { Gpu } from '../gpu/device.ts';
import { Attention } from '../gpu/ops/attention.ts';
import { Embedding } from '../gpu/ops/embedding.ts';
import { MatMul } from '../gpu/ops/matmul.ts';
import { MatVec } from '../gpu/ops/matvec.ts';
import { swigluPair, type BoundOp } from '../gpu/ops/op.ts';
import { FoldedNorm, RmsNorm } from '../gpu/ops/rmsnorm.ts';
import { Rope } from '../gpu/ops/rope.ts';
import type { Sampler } from '../gpu/ops/sampler.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import { headDim, qkvDim, type ModelConfig } from './config.ts';
import type { RunState } from './state.ts';
import { vectorBuffer, type LayerWeights, type ModelWeights } from './weights.ts';

interface LayerOps {
  /** Absent where the norm is folded into the ops around it (decode; FoldedNorm). */
  attNorm?: BoundOp;
  /** One op of the fused wqkv, or wq, wk and wv apart (LayerWeights.qkv). */
  qkv: BoundOp[];
  rope: BoundOp;
  attention: BoundOp;
  o: BoundOp;
  ffnNorm?: BoundOp;
  /** hb = silu(w1 xb) * (w3 xb): one SwiGLU dispatch in decode (when w1 and w3 pair up), else w1 then w3 (gate). */
  ffnUp: BoundOp[];
  w2: BoundOp;
}

/** The decode (one-token) matrix-vector ops of a layer, built before binding: their shapes size the folded norms. */
interface DecodeLinears {
  qkv: { op: MatVec; rowOffset: number }[];
  wo: MatVec;
  w1: MatVec;
  w3: MatVec;
  w2: MatVec;
}

/** What every layer binds with: the device, the shapes, the activations and the ops layers share. */
interface LayerKit {
  gpu: Gpu;
  config: ModelConfig;
  state: RunState;
  rmsnorm: RmsNorm;
  rope: Rope;
  /** A prefill (many-token) op for a weight. */
  matmul(w: GpuWeight): MatMul;
}

/**
 * The folded norms (FoldedNorm) around layer l in decode, where the norm can be folded: `att`, its attention norm
 * (written by layer l - 1's w2); `ffn`, its FFN norm (written by its wo); `next`, the norm its w2 writes (layer
 * l + 1's attention norm, or the final norm).
 */
interface LayerFolds {
  att?: FoldedNorm;
  ffn?: FoldedNorm;
  next?: FoldedNorm;
}

export class Forward {
  private readonly embedding: BoundOp;
  private readonly decodeLayers: LayerOps[] = [];
  private readonly prefillLayers: LayerOps[] = [];
  /** Absent when the final norm is folded into the decode classifier. */
  private readonly finalNorm: BoundOp | undefined;
  private readonly finalNormLast: BoundOp;
  private readonly decodeClassifier: BoundOp;
  private readonly classifier: BoundOp;
  private readonly sample: BoundOp;
  /** The folded norms' buffers (destroyed with the model). */
  readonly folded: FoldedNorm[];
  /** Dispatches recorded by one decode step (for the benchmark's per-token figures). */
  readonly dispatchesPerDecode: number;

  constructor(
    gpu: Gpu,
    readonly config: ModelConfig,
    weights: ModelWeights,
    private readonly state: RunState,
    sampler: Sampler,
  ) {
    const c = config;
    const s = state;
    const maxTokens = s.maxTokens;
    const kit: LayerKit = {
      gpu,
      config: c,
      state: s,
      rmsnorm: new RmsNorm(gpu, c.dim, c.normEps, 'rmsnorm'),
      rope: new Rope(gpu, { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: headDim(c), theta: c.ropeTheta, scale: c.ropeScale, rotaryDims: c.ropeDims, maxTokens }),
      matmul: (w) => new MatMul(gpu, w, maxTokens),
    };

    // Decode ops: the residual adds (wo, w2) decide how many partial sums each folded norm holds.
    const decode: DecodeLinears[] = weights.layers.map((lw) => ({
      qkv: lw.qkv.map(({ w, rowOffset }) => ({ op: new MatVec(gpu, w), rowOffset })),
      wo: new MatVec(gpu, lw.wo),
      w1: new MatVec(gpu, lw.w1),
      w3: new MatVec(gpu, lw.w3),
      w2: new MatVec(gpu, lw.w2),
    }));
    const fold = FoldedNorm.fits(gpu, c.dim) && decode.every((d) => d.wo.canFoldNorm && d.w2.canFoldNorm);
    const folded = (label: string, g: GpuWeight, producer: MatVec) =>
      fold ? new FoldedNorm(gpu, label, vectorBuffer(g), c.dim, Math.ceil(c.dim / producer.rowsPerWorkgroup), c.normEps) : undefined;
    // attIn[l]: layer l's attention norm, written by layer l - 1's w2 (none for layer 0: the embedding writes x);
    // ffnIn[l]: its FFN norm, written by its wo; finalIn: the final norm, written by the last w2.
    const attIn = weights.layers.map((lw, l) => (l === 0 ? undefined : folded(`L${l}.rmsAtt.folded`, lw.rmsAtt, decode[l - 1].w2)));
    const ffnIn = weights.layers.map((lw, l) => folded(`L${l}.rmsFfn.folded`, lw.rmsFfn, decode[l].wo));
    const finalIn = folded('rmsFinal.folded', weights.rmsFinal, decode[c.nLayers - 1].w2);
    this.folded = [...attIn, ...ffnIn, finalIn].filter((n): n is FoldedNorm => n !== undefined);

    this.embedding = new Embedding(gpu, weights.tokenEmbedding).bind('embedding', s.tokens, s.x);
    weights.layers.forEach((lw, l) => {
      const layer = bindLayer(kit, l, lw, decode[l], { att: attIn[l], ffn: ffnIn[l], next: l + 1 < c.nLayers ? attIn[l + 1] : finalIn });
      this.decodeLayers.push(layer.decode);
      this.prefillLayers.push(layer.prefill);
    });
    const finalNorm = new RmsNorm(gpu, c.dim, c.normEps, 'rmsFinal');
    this.finalNorm = finalIn ? undefined : finalNorm.bind('rmsFinal', s.x, vectorBuffer(weights.rmsFinal), s.xb);
    this.finalNormLast = finalNorm.bind('rmsFinal.last', s.xLast, vectorBuffer(weights.rmsFinal), s.xb);
    const wcls = new MatVec(gpu, weights.wcls);
    this.classifier = wcls.bind('wcls', s.xb, s.logits);
    this.decodeClassifier = finalIn ? wcls.bind('wcls.folded', finalIn, s.logits) : this.classifier;
    this.sample = sampler.bind('sample', s.logits, s.tokens, 0, s.step.buffer);
    this.dispatchesPerDecode = -1;
    this.dispatchesPerDecode = this.countDecodeDispatches();
  }

  private layers(pass: GPUComputePassEncoder, ops: LayerOps[], n: number, pos: number | undefined): void {
    for (const o of ops) {
      o.attNorm?.encode(pass, n);
      for (const op of o.qkv) op.encode(pass, n);
      o.rope.encode(pass, n);
      o.attention.encode(pass, n, pos);
      o.o.encode(pass, n);
      o.ffnNorm?.encode(pass, n);
      for (const op of o.ffnUp) op.encode(pass, n);
      o.w2.encode(pass, n);
    }
  }

  /**
   * One decode step: embeds tokens[0] at the step's position, runs every layer, and samples the next token into
   * tokens[0]. The caller has written the step uniform (pos, 1, seed); `pos`, when given, is the same position
   * (attention then skips its merge pass while the context fits one chunk of keys). Without `sample` it stops at
   * the logits, for encodeSample to draw from later.
   */
  encodeDecode(pass: GPUComputePassEncoder, pos?: number, sample = true): void {
    this.embedding.encode(pass, 1);
    this.layers(pass, this.decodeLayers, 1, pos);
    this.finalNorm?.encode(pass, 1);
    this.decodeClassifier.encode(pass, 1);
    if (sample) this.sample.encode(pass, 1);
  }

  /** Draws the next token into tokens[0] from the logits a decode step left. */
  encodeSample(pass: GPUComputePassEncoder): void {
    this.sample.encode(pass, 1);
  }

  /**
   * Prefill of n tokens from tokens[0..n-1] at positions pos..pos+n-1 (the caller wrote them and the step
   * uniform). With `sample`, the last token's logits are computed and the next token is drawn into tokens[0].
   */
  encodePrefill(encoder: GPUCommandEncoder, n: number, sample: boolean, pos?: number): void {
    let pass = encoder.beginComputePass({ label: 'prefill' });
    this.embedding.encode(pass, n);
    this.layers(pass, n === 1 ? this.decodeLayers : this.prefillLayers, n, pos);
    pass.end();
    if (!sample) return;
    const rowBytes = this.config.dim * 4;
    encoder.copyBufferToBuffer(this.state.x, (n - 1) * rowBytes, this.state.xLast, 0, rowBytes);
    pass = encoder.beginComputePass({ label: 'prefill.logits' });
    this.finalNormLast.encode(pass, 1);
    this.classifier.encode(pass, 1);
    this.sample.encode(pass, 1);
    pass.end();
  }

  private countDecodeDispatches(): number {
    let count = 0;
    const counter = {
      setPipeline() {},
      setBindGroup() {},
      dispatchWorkgroups() {
        count++;
      },
      dispatchWorkgroupsIndirect() {
        count++;
      },
    } as unknown as GPUComputePassEncoder;
    this.encodeDecode(counter);
    return count;
  }
}

/**
 * Binds layer l for decode (one token: the MatVec ops, folded norms where they fit) and for prefill (the MatMul
 * ops), step by step as llama2.c's forward() runs a layer; both share the norms, RoPE and attention.
 */
function bindLayer(kit: LayerKit, l: number, lw: LayerWeights, d: DecodeLinears, folds: LayerFolds): { decode: LayerOps; prefill: LayerOps } {
  const { gpu, config: c, state: s } = kit;
  const L = `L${l}`;
  const step = s.step.buffer;
  const cache = s.kvCaches[l];
  const qkvRow = (rowOffset: number) => ({ rowOffset, yStride: qkvDim(c) });

  // xb = rmsnorm(x, rmsAtt)
  const attNorm = kit.rmsnorm.bind(`${L}.rmsAtt`, s.x, vectorBuffer(lw.rmsAtt), s.xb);
  const attIn = folds.att ?? s.xb;
  // q, k, v = wq xb, wk xb, wv xb, side by side in each token's qkv row
  const qkv = {
    decode: d.qkv.map(({ op, rowOffset }) => op.bind(`${L}.${shortName(op.weight)}.matvec`, attIn, s.qkv, qkvRow(rowOffset))),
    prefill: lw.qkv.map(({ w, rowOffset }) => kit.matmul(w).bind(`${L}.${shortName(w)}.matmul`, s.xb, s.qkv, qkvRow(rowOffset))),
  };
  // q, k = rope(q, k, pos);  keyCache[pos] = k;  valueCache[pos] = v
  const rope = kit.rope.bind(`${L}.rope`, s.qkv, cache, step);
  // xb2 = softmax(q keyCache^T / sqrt(headDim)) valueCache, per head, over positions 0..pos
  const attention = new Attention(
    gpu,
    { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: headDim(c), maxSeqLen: s.contextLength, maxTokens: s.maxTokens, qStride: qkvDim(c) },
    cache,
  ).bind(`${L}.attention`, s.qkv, s.xb2, step);
  // x += wo xb2
  const o = {
    decode: d.wo.bind(`${L}.wo.matvec`, s.xb2, s.x, { accumulate: true, normOut: folds.ffn }),
    prefill: kit.matmul(lw.wo).bind(`${L}.wo.matmul`, s.xb2, s.x, { accumulate: true }),
  };
  // xb = rmsnorm(x, rmsFfn)
  const ffnNorm = kit.rmsnorm.bind(`${L}.rmsFfn`, s.x, vectorBuffer(lw.rmsFfn), s.xb);
  const ffnIn = folds.ffn ?? s.xb;
  // hb = silu(w1 xb) * (w3 xb)
  const w1 = kit.matmul(lw.w1);
  const ffnUp = {
    decode: swigluPair(lw.w1, lw.w3)
      ? [d.w1.bind(`${L}.w13.matvec`, ffnIn, s.hb, { up: lw.w3 })]
      : [d.w1.bind(`${L}.w1.matvec`, ffnIn, s.hb), d.w3.bind(`${L}.w3.matvec`, ffnIn, s.hb, { gate: true })],
    prefill:
      w1.swiglu && swigluPair(lw.w1, lw.w3)
        ? [w1.bind(`${L}.w13.matmul`, s.xb, s.hb, { up: lw.w3 })]
        : [w1.bind(`${L}.w1.matmul`, s.xb, s.hb), kit.matmul(lw.w3).bind(`${L}.w3.matmul`, s.xb, s.hb, { gate: true })],
  };
  // x += w2 hb
  const w2 = {
    decode: d.w2.bind(`${L}.w2.matvec`, s.hb, s.x, { accumulate: true, normOut: folds.next }),
    prefill: kit.matmul(lw.w2).bind(`${L}.w2.matmul`, s.hb, s.x, { accumulate: true }),
  };

  return {
    decode: {
      attNorm: folds.att ? undefined : attNorm,
      qkv: qkv.decode,
      rope,
      attention,
      o: o.decode,
      ffnNorm: folds.ffn ? undefined : ffnNorm,
      ffnUp: ffnUp.decode,
      w2: w2.decode,
    },
    prefill: { attNorm, qkv: qkv.prefill, rope, attention, o: o.prefill, ffnNorm, ffnUp: ffnUp.prefill, w2: w2.prefill },
  };
}

/** The last part of a weight's name ("layers.3.wqkv" -> "wqkv"), for labels. */
function shortName(w: GpuWeight): string {
  return w.name.split('.').pop() ?? w.name;
}
