// embedding: out[t, c] = table[tokens[token_offset + t], c] for an f32 or f16 (F16) table.
//
// Shapes: tokens [>= token_offset + n] u32; table [vocab, cols] in up to 4 row chunks w_q0..w_q3 (chunk k holds
// rows chunk_end[k-1] .. chunk_end[k]-1; unused slots repeat chunk 0 and have an empty range); out [n, cols] f32.
// The token is only known on the GPU (the sampler writes it), so every chunk is bound and the shader picks one.
// A token id past the table writes zeros.
// Dispatch: (n, 1, 1) workgroups of WG threads; workgroup t copies row tokens[token_offset + t].

override WG: u32 = 64u;
override F16: bool = false;

struct Params {
  chunk_end: vec4u,
  cols: u32,
  token_offset: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> w_q0: array<u32>;
@group(0) @binding(2) var<storage, read> w_q1: array<u32>;
@group(0) @binding(3) var<storage, read> w_q2: array<u32>;
@group(0) @binding(4) var<storage, read> w_q3: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

fn word(chunk: u32, i: u32) -> u32 {
  switch (chunk) {
    case 0u: { return w_q0[i]; }
    case 1u: { return w_q1[i]; }
    case 2u: { return w_q2[i]; }
    default: { return w_q3[i]; }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cols = params.cols;
  let token = tokens[params.token_offset + wg.x];
  let ends = params.chunk_end;
  // Chunk holding the token: the number of chunk ends at or below it.
  let chunk = dot(vec4u(ends <= vec4u(token)), vec4u(1u));
  let start = select(0u, ends[max(chunk, 1u) - 1u], chunk > 0u);
  let base = (token - start) * cols;
  for (var c = lid; c < cols; c += WG) {
    var v = 0.0;
    if (chunk < 4u) {
      let e = base + c;
      if (F16) {
        let pair = unpack2x16float(word(chunk, e >> 1u));
        v = select(pair.x, pair.y, (e & 1u) == 1u);
      } else {
        v = bitcast<f32>(word(chunk, e));
      }
    }
    out[wg.x * cols + c] = v;
  }
}
