// embedding_q: out[t, c] = dequant(table[tokens[token_offset + t], c]) for a quantized table, encoding DTYPE
// (2 q8, 3 q4, 4 q4k, 5 q5k, 6 q6k, as in matmul.wgsl; encodings: shaders/README.md).
//
// Shapes: tokens [>= token_offset + n] u32; table [vocab, cols] in up to 4 row chunks (w_q0..w_q3 with scales
// w_s0..w_s3, f16 pairs when SCALE_F16, else f32; q4k and q5k have none and bind their data there); out [n, cols] f32.
// Dispatch: (n, 1, 1) workgroups of WG threads; workgroup t decodes row tokens[token_offset + t].
// Params, the data chunks' bindings, word() and the entry point (which picks the chunk holding the token) are in
// shaders/common/gather.wgsl, the k-quants' block arithmetic in kquants.wgsl, which src/gpu/shaders.ts appends to
// this file.

override DTYPE: u32 = 3u;
override SCALE_F16: bool = true;

@group(0) @binding(5) var<storage, read> w_s0: array<u32>;
@group(0) @binding(6) var<storage, read> w_s1: array<u32>;
@group(0) @binding(7) var<storage, read> w_s2: array<u32>;
@group(0) @binding(8) var<storage, read> w_s3: array<u32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
@group(0) @binding(10) var<uniform> params: Params;

fn scale_word(chunk: u32, i: u32) -> u32 {
  switch (chunk) {
    case 0u: { return w_s0[i]; }
    case 1u: { return w_s1[i]; }
    case 2u: { return w_s2[i]; }
    default: { return w_s3[i]; }
  }
}

fn scale_at(chunk: u32, i: u32) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(scale_word(chunk, i >> 1u));
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(scale_word(chunk, i));
}

// Value e (0..255) of k-quant block blk of a chunk (the arithmetic of matmul.wgsl's k_quad, for one value).
fn k_value(chunk: u32, blk: u32, e: u32) -> f32 {
  let j = e / 32u;
  let w = (e % 32u) / 4u;
  var q: vec4f;
  if (DTYPE == 6u) {
    let o = 52u * blk;
    let h = j / 4u;
    let r = j % 4u;
    let s = vec2u(word(chunk, o + 48u + 2u * h), word(chunk, o + 49u + 2u * h));
    q = scale_at(chunk, blk) * k6_scale(s, r, w / 4u) * k6_values(word(chunk, o + 16u * h + 8u * (r & 1u) + w), word(chunk, o + 32u + 8u * h + w), r);
  } else {
    let size = select(36u, 44u, DTYPE == 5u);
    let o = size * blk;
    let sm = k4_scale_min(vec4u(word(chunk, o), word(chunk, o + 1u), word(chunk, o + 2u), word(chunk, o + 3u)), j);
    var n = k_nibbles(word(chunk, o + size - 32u + 8u * (j / 2u) + w), (j & 1u) == 1u);
    if (DTYPE == 5u) {
      n += k5_high(word(chunk, o + 4u + w), j);
    }
    q = sm.x * n - sm.y;
  }
  return q[e % 4u];
}

// Value c of row `row` of a chunk.
fn value(chunk: u32, row: u32, c: u32) -> f32 {
  let cols = params.cols;
  if (DTYPE >= 4u) {
    return k_value(chunk, row * (cols / 256u) + c / 256u, c % 256u);
  }
  let g = row * ((cols + 31u) / 32u) + c / 32u;
  let i = c % 32u;
  let s = scale_at(chunk, g);
  if (DTYPE == 3u) {
    let q = word(chunk, g * 4u + i / 8u);
    return (f32((q >> (4u * (i % 8u))) & 15u) - 8.0) * s;
  }
  let q = word(chunk, g * 8u + i / 4u);
  return f32(bitcast<i32>(q << (24u - 8u * (i % 4u))) >> 24u) * s;
}
