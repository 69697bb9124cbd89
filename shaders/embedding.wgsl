// embedding: out[t, c] = table[tokens[token_offset + t], c] for an f32 or f16 (F16) table.
//
// Shapes: tokens [>= token_offset + n] u32; table [vocab, cols] in up to 4 row chunks w_q0..w_q3; out [n, cols] f32.
// Dispatch: (n, 1, 1) workgroups of WG threads; workgroup t copies row tokens[token_offset + t].
// Params, the chunks' bindings, word() and the entry point (which picks the chunk holding the token) are in
// shaders/common/gather.wgsl, which src/gpu/shaders.ts appends to this file.

override F16: bool = false;

@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// Value c of row `row` of a chunk.
fn value(chunk: u32, row: u32, c: u32) -> f32 {
  let e = row * params.cols + c;
  if (F16) {
    let pair = unpack2x16float(word(chunk, e >> 1u));
    return select(pair.x, pair.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(word(chunk, e));
}
