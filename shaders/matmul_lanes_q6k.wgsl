// matmul_lanes_q6k: Y[t, row_offset + r] (+)= sum_c W[r, c] * X[t, c] for the rows r of one chunk of a q6k weight
// (ggml's block_q6_K with d moved to w_s), laid out for CPU adapters whose subgroups are 8 SIMD lanes (Mesa
// lavapipe), as matmul_lanes_q4.wgsl is for q4. Decode runs it with TOKENS = 1, prefill with TOKENS = 16.
//
// Shapes: X [n, cols] f32, cols a multiple of 256, read as vec4s; w_q [rows, cols / 256, 13] vec4<u32> (per 256
// values: vec4s 0..7 ql, 8..11 qh, 12 the int8 scales) and w_s [rows, cols / 256] the blocks' d (f16 pairs when
// SCALE_F16, else f32; shaders/README.md); Y [n, y_stride] f32.
// Dispatch: (ceil(rows / (RPL WG)) + (n - 1) % TOKENS, ceil(n / TOKENS)) workgroups of WG threads (a multiple of
// the subgroup size, 8); the (n - 1) % TOKENS workgroups past the row groups only tell the others n.
//
// Invocation `lid` of workgroup w computes rows RPL WG w + k WG + lid (k < RPL) for TOKENS tokens. Each lane loads
// its own rows' blocks (each part of 64 values, 16 of each of the 4 runs of a half, dequantized once for all TOKENS
// tokens, as matvec_q6k.wgsl splits a block); for each part the 8 lanes of a subgroup load two vec4s of each
// token's X apiece and pass them to each other with subgroupBroadcast.
//
// SWIGLU, NORM_IN and NORM_OUT as in matmul_lanes_q4.wgsl. Params, combine() and the overrides are in
// shaders/common/linear.wgsl, the bindings and vec_at() in lanes_scaled.wgsl, SCALE_F16 and scale_at() in
// scales.wgsl, the block arithmetic in kquants.wgsl, the layout constants (WG, TOKENS, RPL), the sums (acc), each
// lane's rows and tokens (lanes_start()), the entry point and the kernel's end (lanes_finish()) in lanes.wgsl, which
// src/gpu/shaders.ts appends to this file.

enable subgroups;

// The values of one run of a part (d * sc * (q - 32) of the ql vec4 q and qh vec4 h, run r): values 4w .. 4w + 3
// in v<w>.
struct Run { v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f }

fn dequant(q: vec4u, h: vec4u, r: u32, s: f32) -> Run {
  return Run(s * k6_values(q.x, h.x, r), s * k6_values(q.y, h.y, r), s * k6_values(q.z, h.z, r), s * k6_values(q.w, h.w, r));
}

// sum over one run of W * X, where lanes 0..3 (run_dot_lo, runs 0 and 2) or 4..7 (run_dot_hi, runs 1 and 3) of
// the subgroup hold X's values 4w .. 4w + 3 of the run in xv.
fn run_dot_lo(w: Run, xv: vec4f) -> f32 {
  return dot(w.v0, subgroupBroadcast(xv, 0u)) + dot(w.v1, subgroupBroadcast(xv, 1u)) +
    dot(w.v2, subgroupBroadcast(xv, 2u)) + dot(w.v3, subgroupBroadcast(xv, 3u));
}

fn run_dot_hi(w: Run, xv: vec4f) -> f32 {
  return dot(w.v0, subgroupBroadcast(xv, 4u)) + dot(w.v1, subgroupBroadcast(xv, 5u)) +
    dot(w.v2, subgroupBroadcast(xv, 6u)) + dot(w.v3, subgroupBroadcast(xv, 7u));
}

// Blocks of 256 values.
fn row_units() -> u32 {
  return params.cols / 256u;
}

fn add_unit(b: u32, li: u32) {
  for (var p = 0u; p < 4u; p++) {
    // Part p: half h, sixteen-value part i; its run r starts at value 256b + 128h + 32r + 16i (vec4 64b + 32h +
    // 8r + 4i). Lane li loads vec4 li % 4 of runs li / 4 (xa: runs 0, 1) and 2 + li / 4 (xb: runs 2, 3).
    let h = p / 2u;
    let i = p % 2u;
    var xa: array<vec4f, MAX_TOKENS>;
    var xb: array<vec4f, MAX_TOKENS>;
    for (var j = 0u; j < TOKENS; j++) {
      let at = x_row[j] + 64u * b + 32u * h + 8u * (li / 4u) + 4u * i + li % 4u;
      xa[j] = x4[at];
      xb[j] = x4[at + 16u];
    }
    for (var r = 0u; r < RPL; r++) {
      let u = SWIGLU && r >= OUT_RPL; // a row slot of U
      let blk = w_row[r] + b;
      let qa = vec_at(13u * blk + 4u * h + i, u);
      let qb = vec_at(13u * blk + 4u * h + 2u + i, u);
      let qh = vec_at(13u * blk + 8u + 2u * h + i, u);
      let sw = vec_at(13u * blk + 12u, u);
      let s = select(sw.xy, sw.zw, h == 1u);
      let d = scale_at(blk, u);
      let w0 = dequant(qa, qh, 0u, d * k6_scale(s, 0u, i));
      let w1 = dequant(qb, qh, 1u, d * k6_scale(s, 1u, i));
      let w2 = dequant(qa, qh, 2u, d * k6_scale(s, 2u, i));
      let w3 = dequant(qb, qh, 3u, d * k6_scale(s, 3u, i));
      for (var j = 0u; j < TOKENS; j++) {
        acc[r][j] += run_dot_lo(w0, xa[j]) + run_dot_hi(w1, xa[j]) + run_dot_lo(w2, xb[j]) + run_dot_hi(w3, xb[j]);
      }
    }
  }
}
