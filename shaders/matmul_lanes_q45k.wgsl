// matmul_lanes_q45k: Y[t, row_offset + r] (+)= sum_c W[r, c] * X[t, c] for the rows r of one chunk of a q4k weight,
// or a q5k weight with Q5 (ggml's block_q4_K and block_q5_K kept as they are), laid out for CPU adapters whose
// subgroups are 8 SIMD lanes (Mesa lavapipe), as matmul_lanes_q4.wgsl is for q4. Decode runs it with TOKENS = 1,
// prefill with TOKENS = 16.
//
// Shapes: X [n, cols] f32, cols a multiple of 256, read as vec4s; w_q [rows, cols / 256, B] vec4<u32>, one block
// per 256 values: q4k (B = 9): vec4 0 the header d | dmin, scales[12], vec4s 1 + 2k, 2 + 2k the qs of sub-blocks
// 2k, 2k + 1; q5k (B = 11): the header, vec4s 1 and 2 qh (the fifth bits), vec4s 3 + 2k, 4 + 2k the qs
// (shaders/README.md); Y [n, y_stride] f32.
// Dispatch: (ceil(rows / (RPL WG)) + (n - 1) % TOKENS, ceil(n / TOKENS)) workgroups of WG threads (a multiple of
// the subgroup size, 8); the (n - 1) % TOKENS workgroups past the row groups only tell the others n.
//
// Invocation `lid` of workgroup w computes rows RPL WG w + k WG + lid (k < RPL) for TOKENS tokens. Each lane loads
// its own rows' blocks (a block's header and q5k's fifth bits once, each pair of sub-blocks dequantized to
// d sc q - dmin m once for all TOKENS tokens); for each pair of sub-blocks (64 values) the 8 lanes of a subgroup load
// two vec4s of each token's X apiece and pass them to each other with subgroupBroadcast.
//
// SWIGLU, NORM_IN and NORM_OUT as in matmul_lanes_q4.wgsl. Params, combine() and the overrides are in
// shaders/common/linear.wgsl, the block arithmetic in kquants.wgsl, the layout constants (WG, TOKENS, RPL), the
// sums (acc), each lane's rows and tokens (lanes_start()), dot32(), the entry point and the kernel's end
// (lanes_finish()) in lanes.wgsl, which src/gpu/shaders.ts appends to this file.

enable subgroups;

override Q5: bool = false;
// Vec4s per block.
override B: u32 = select(9u, 11u, Q5);

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(2) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> xn: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

// Vec4 i of W, or of U when `u`.
fn vec_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

// d sc q - dmin m of the 4 values of sub-block j in a qs word q (nibble `high`) and, with Q5, a qh word h.
fn dequant4(q: u32, h: u32, high: bool, j: u32, sm: vec2f) -> vec4f {
  var n = k_nibbles(q, high);
  if (Q5) {
    n += k5_high(h, j);
  }
  return fma(n, vec4f(sm.x), vec4f(-sm.y));
}

// The values of sub-block j (nibble `high` of the qs vec4s qa, qb; with Q5, fifth bits from qh vec4s ha, hb;
// sm = (d sc, dmin m)): values 4w .. 4w + 3 in v<w>.
fn dequant(qa: vec4u, qb: vec4u, ha: vec4u, hb: vec4u, high: bool, j: u32, sm: vec2f) -> Values32 {
  return Values32(dequant4(qa.x, ha.x, high, j, sm), dequant4(qa.y, ha.y, high, j, sm), dequant4(qa.z, ha.z, high, j, sm),
                  dequant4(qa.w, ha.w, high, j, sm), dequant4(qb.x, hb.x, high, j, sm), dequant4(qb.y, hb.y, high, j, sm),
                  dequant4(qb.z, hb.z, high, j, sm), dequant4(qb.w, hb.w, high, j, sm));
}

// Blocks of 256 values.
fn row_units() -> u32 {
  return params.cols / 256u;
}

fn add_unit(b: u32, li: u32) {
  var head: array<vec4u, MAX_RPL>;
  // q5k: each row's qh, bytes 0..15 (with qa) and 16..31 (with qb); zero for q4k.
  var qh_a: array<vec4u, MAX_RPL>;
  var qh_b: array<vec4u, MAX_RPL>;
  for (var r = 0u; r < RPL; r++) {
    let u = SWIGLU && r >= OUT_RPL;
    head[r] = vec_at(B * (w_row[r] + b), u);
    if (Q5) {
      qh_a[r] = vec_at(B * (w_row[r] + b) + 1u, u);
      qh_b[r] = vec_at(B * (w_row[r] + b) + 2u, u);
    }
  }
  for (var k = 0u; k < 4u; k++) {
    // Lane li loads X[t, 256b + 64k + 4li ..] (sub-block 2k) and the same 32 values on (sub-block 2k + 1).
    var xa: array<vec4f, MAX_TOKENS>;
    var xb: array<vec4f, MAX_TOKENS>;
    for (var j = 0u; j < TOKENS; j++) {
      xa[j] = x4[x_row[j] + 64u * b + 16u * k + li];
      xb[j] = x4[x_row[j] + 64u * b + 16u * k + 8u + li];
    }
    for (var r = 0u; r < RPL; r++) {
      let u = SWIGLU && r >= OUT_RPL; // a row slot of U
      let at = B * (w_row[r] + b) + B - 8u + 2u * k;
      let qa = vec_at(at, u);
      let qb = vec_at(at + 1u, u);
      let da = dequant(qa, qb, qh_a[r], qh_b[r], false, 2u * k, k4_scale_min(head[r], 2u * k));
      let db = dequant(qa, qb, qh_a[r], qh_b[r], true, 2u * k + 1u, k4_scale_min(head[r], 2u * k + 1u));
      for (var j = 0u; j < TOKENS; j++) {
        acc[r][j] += dot32(da, xa[j]) + dot32(db, xb[j]);
      }
    }
  }
}
