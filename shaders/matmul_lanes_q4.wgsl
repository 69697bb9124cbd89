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
// Params, combine(), scale_at() and the SWIGLU, NORM_IN and NORM_OUT overrides are in shaders/common/linear.wgsl
// and scales.wgsl, the layout constants (WG, TOKENS, RPL), the sums (acc), each lane's rows and tokens
// (lanes_start()) and the kernel's end (lanes_finish()) in lanes.wgsl, which src/gpu/shaders.ts appends to this file.

enable subgroups;

override SCALE_F16: bool = true;

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;
@group(0) @binding(3) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(4) var<storage, read> u_s: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> xn: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

// Group i of W, or of U when `u`.
fn group_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

// (nibble - 8) * s for the 8 nibbles of a word: elements 0..3 and 4..7.
fn dequant_lo(q: u32, s: f32) -> vec4f {
  let n = vec4f(bitcast<vec4i>((vec4u(q) >> vec4u(0u, 4u, 8u, 12u)) & vec4u(15u)));
  return fma(n, vec4f(s), vec4f(-8.0 * s));
}

fn dequant_hi(q: u32, s: f32) -> vec4f {
  let n = vec4f(bitcast<vec4i>((vec4u(q) >> vec4u(16u, 20u, 24u, 28u)) & vec4u(15u)));
  return fma(n, vec4f(s), vec4f(-8.0 * s));
}

// The 32 dequantized values of one group of one row: word k holds elements 8k .. 8k + 7 (lo_k, hi_k).
struct Group { lo0: vec4f, hi0: vec4f, lo1: vec4f, hi1: vec4f, lo2: vec4f, hi2: vec4f, lo3: vec4f, hi3: vec4f }

fn dequant(q: vec4u, s: f32) -> Group {
  return Group(dequant_lo(q.x, s), dequant_hi(q.x, s), dequant_lo(q.y, s), dequant_hi(q.y, s),
              dequant_lo(q.z, s), dequant_hi(q.z, s), dequant_lo(q.w, s), dequant_hi(q.w, s));
}

// sum over one group of W * X, where lane i of the subgroup holds X's elements 4i .. 4i + 3 of the group in xv.
fn group_dot(w: Group, xv: vec4f) -> f32 {
  return dot(w.lo0, subgroupBroadcast(xv, 0u)) + dot(w.hi0, subgroupBroadcast(xv, 1u)) +
    dot(w.lo1, subgroupBroadcast(xv, 2u)) + dot(w.hi1, subgroupBroadcast(xv, 3u)) +
    dot(w.lo2, subgroupBroadcast(xv, 4u)) + dot(w.hi2, subgroupBroadcast(xv, 5u)) +
    dot(w.lo3, subgroupBroadcast(xv, 6u)) + dot(w.hi3, subgroupBroadcast(xv, 7u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) li: u32) {
  let cols = params.cols;
  let groups = (cols + 31u) / 32u;
  if (!lanes_start(wg, nwg, lid, groups)) {
    return;
  }
  for (var g = 0u; g < groups; g++) {
    // Lane li loads X[t, c .. c + 3] (zero past cols).
    let c = 32u * g + 4u * li;
    var xv: array<vec4f, MAX_TOKENS>;
    for (var j = 0u; j < TOKENS; j++) {
      xv[j] = select(vec4f(0.0), x4[x_row[j] + min(c, cols - 4u) / 4u], c < cols);
    }
    for (var r = 0u; r < RPL; r++) {
      let u = SWIGLU && r >= OUT_RPL; // a row slot of U
      let d = dequant(group_at(w_row[r] + g, u), scale_at(w_row[r] + g, u));
      for (var j = 0u; j < TOKENS; j++) {
        acc[r][j] += group_dot(d, xv[j]);
      }
    }
  }
  lanes_finish(wg.x, lid, li);
}
