// The frame of the embedding kernels (embedding.wgsl, embedding_q.wgsl), appended by src/gpu/shaders.ts: their
// Params, the token ids and the table's data chunks w_q0..w_q3 (chunk k holds rows chunk_end[k-1] .. chunk_end[k]-1;
// unused slots repeat chunk 0 and have an empty range), word(), and the entry point. The token is only known on the
// GPU (the sampler writes it), so every chunk is bound and the shader picks one; a token id past the table writes
// zeros. Workgroup t writes out row t (the kernel's `out` binding) from row tokens[token_offset + t] of the table,
// value c of a row from the kernel's value(chunk, row, c) (row within the chunk).

override WG: u32 = 64u;

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

// Word i of a chunk's data.
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
  let row = token - start;
  for (var c = lid; c < cols; c += WG) {
    var v = 0.0;
    if (chunk < 4u) {
      v = value(chunk, row, c);
    }
    out[wg.x * cols + c] = v;
  }
}
