// matmul_lanes_q4: Y[t, row_offset + r] (+)= sum_c W[r, c] * X[t, c] for the rows r of one chunk of a q4 weight,
// laid out for CPU adapters whose subgroups are 8 SIMD lanes (Mesa lavapipe). Decode runs it with TOKENS = 1,
// prefill with TOKENS = 16.
//
// Shapes: X [n, cols] f32, cols a multiple of 4, read as vec4s; w_q [rows, G] vec4<u32> and w_s [rows, G] scales
// (f16 pairs when SCALE_F16, else f32), G = ceil(cols / 32) (shaders/README.md); Y [n, y_stride] f32.
// Dispatch: (ceil(rows / (RPL WG)) + (n - 1) % TOKENS, ceil(n / TOKENS)) workgroups of WG threads (a multiple of
// the subgroup size, 8). The token count n changes per step while params are fixed at bind time, so it rides in
// the dispatch size: the (n - 1) % TOKENS workgroups past the row groups only tell the others n.
//
// Invocation `lid` of workgroup w computes rows RPL WG w + k WG + lid (k < RPL) for TOKENS tokens. On a CPU
// adapter a load whose address differs between lanes costs one scalar load per lane and 32-bit word, so the
// kernel loads each byte once per subgroup: every lane loads its own rows' weights (dequantized once for all
// TOKENS tokens), and for each group of 32 columns the 8 lanes of a subgroup load one vec4 of each token's X
// apiece and pass them to each other with subgroupBroadcast (a register shuffle). More rows per lane share each
// load of X among more rows (prefill); decode has one token and little to share.
//
// SWIGLU (decode): y[row_offset + r] = silu(W[r] . x) * (U[r] . x), the Llama FFN's SwiGLU in one dispatch (W is
// w1; U, bound as u_q/u_s, is w3 of the same shape and chunking): each lane's first RPL / 2 row slots hold rows of
// W and the others the same rows of U, so a workgroup writes RPL WG / 2 rows. Otherwise U is unused (bound to W).
//
// Params, combine() and the SWIGLU, NORM_IN and NORM_OUT overrides are in shaders/common/linear.wgsl, the bindings
// and vec_at() in lanes_scaled.wgsl, SCALE_F16 and scale_at() in scales.wgsl, the layout constants (WG, TOKENS, RPL),
// the sums (acc), each lane's rows and tokens (lanes_start()), dot32(), the entry point and the kernel's end
// (lanes_finish()) in lanes.wgsl, which src/gpu/shaders.ts appends to this file.

enable subgroups;

// (nibble - 8) * s for the 8 nibbles of a word: elements 0..3 and 4..7.
fn dequant_lo(q: u32, s: f32) -> vec4f {
  let n = vec4f(bitcast<vec4i>((vec4u(q) >> vec4u(0u, 4u, 8u, 12u)) & vec4u(15u)));
  return fma(n, vec4f(s), vec4f(-8.0 * s));
}

fn dequant_hi(q: u32, s: f32) -> vec4f {
  let n = vec4f(bitcast<vec4i>((vec4u(q) >> vec4u(16u, 20u, 24u, 28u)) & vec4u(15u)));
  return fma(n, vec4f(s), vec4f(-8.0 * s));
}

// The 32 dequantized values of one group of one row: word k holds elements 8k .. 8k + 7 (v<2k>, v<2k + 1>).
fn dequant(q: vec4u, s: f32) -> Values32 {
  return Values32(dequant_lo(q.x, s), dequant_hi(q.x, s), dequant_lo(q.y, s), dequant_hi(q.y, s),
                  dequant_lo(q.z, s), dequant_hi(q.z, s), dequant_lo(q.w, s), dequant_hi(q.w, s));
}

// Groups of 32 values.
fn row_units() -> u32 {
  return (params.cols + 31u) / 32u;
}

fn add_unit(g: u32, li: u32) {
  let cols = params.cols;
  // Lane li loads X[t, c .. c + 3] (zero past cols).
  let c = 32u * g + 4u * li;
  var xv: array<vec4f, MAX_TOKENS>;
  for (var j = 0u; j < TOKENS; j++) {
    xv[j] = select(vec4f(0.0), x4[x_row[j] + min(c, cols - 4u) / 4u], c < cols);
  }
  for (var r = 0u; r < RPL; r++) {
    let u = SWIGLU && r >= OUT_RPL; // a row slot of U
    let d = dequant(vec_at(w_row[r] + g, u), scale_at(w_row[r] + g, u));
    for (var j = 0u; j < TOKENS; j++) {
      acc[r][j] += dot32(d, xv[j]);
    }
  }
}
