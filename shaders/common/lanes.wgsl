// Shared by the lanes kernels (shaders/matmul_lanes_<dtype>.wgsl), appended by src/gpu/shaders.ts after
// common/linear.wgsl: their layout constants, each lane's sums, the entry point and the kernel's end. It reads the
// kernel's own x4, y, xn and params bindings, and calls the kernel's row_units() (the units of a row of W: groups,
// blocks) and add_unit(g, li) (adds unit g of each of this lane's rows times each token's X to acc; li is the
// subgroup lane).
//
// Invocation `lid` of workgroup w computes rows RPL WG w + k WG + lid (k < RPL) for TOKENS tokens. SWIGLU: each
// lane's first RPL / 2 row slots hold rows of W and the others the same rows of U, so a workgroup writes
// RPL WG / 2 rows. NORM_IN: X is followed by partial sums of x^2 (X[cols .. cols + norm_parts), zero up to the
// next vec4), whose total scales the results by 1 / sqrt(sum / cols + eps). NORM_OUT (with mode 1): also stores
// the new y rows times g, and each workgroup's sum of their squares, into xn = [g (norm_dim) | y * g (norm_dim) |
// one sum per OUT_RPL WG rows].

override WG: u32 = 8u;
override TOKENS: u32 = 1u; // 1 ..= MAX_TOKENS
override RPL: u32 = 2u; // rows per lane, 1 ..= MAX_RPL
const MAX_RPL: u32 = 8u;
const MAX_TOKENS: u32 = 16u;
// Rows of y per lane: RPL, or RPL / 2 with SWIGLU.
override OUT_RPL: u32 = select(RPL, RPL / 2u, SWIGLU);

// acc[r][j]: this lane's sum for row slot r and token tok0 + j.
var<private> acc: array<array<f32, MAX_TOKENS>, MAX_RPL>;
// This lane's rows of W times the kernel's units per row, and each token's row of X in vec4s (lanes_start).
var<private> w_row: array<u32, MAX_RPL>;
var<private> x_row: array<u32, MAX_TOKENS>;
// The step's token count n and this workgroup's first token.
var<private> n: u32;
var<private> tok0: u32;

// 32 dequantized values of a row (a q4 group, a q4k/q5k sub-block): values 4w .. 4w + 3 in v<w>.
struct Values32 { v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f, v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f }

// sum over 32 values of W * X, where lane i of the subgroup holds X's values 4i .. 4i + 3 of them in xv.
fn dot32(w: Values32, xv: vec4f) -> f32 {
  return dot(w.v0, subgroupBroadcast(xv, 0u)) + dot(w.v1, subgroupBroadcast(xv, 1u)) +
    dot(w.v2, subgroupBroadcast(xv, 2u)) + dot(w.v3, subgroupBroadcast(xv, 3u)) +
    dot(w.v4, subgroupBroadcast(xv, 4u)) + dot(w.v5, subgroupBroadcast(xv, 5u)) +
    dot(w.v6, subgroupBroadcast(xv, 6u)) + dot(w.v7, subgroupBroadcast(xv, 7u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) li: u32) {
  let units = row_units();
  if (!lanes_start(wg, nwg, lid, units)) {
    return;
  }
  for (var g = 0u; g < units; g++) {
    add_unit(g, li);
  }
  lanes_finish(wg.x, lid, li);
}

// Sets n, tok0, w_row and x_row for workgroup wg of a dispatch of nwg workgroups, whose rows hold `per_row` units of
// the kernel's (groups, blocks); false for the (n - 1) % TOKENS workgroups past the row groups, which only tell the
// others n. Rows past the chunk (the last workgroup) and tokens past n read the last one again and are not written.
fn lanes_start(wg: vec3u, nwg: vec3u, lid: u32, per_row: u32) -> bool {
  let row_groups = (params.rows + OUT_RPL * WG - 1u) / (OUT_RPL * WG);
  if (wg.x >= row_groups) {
    return false;
  }
  n = (nwg.y - 1u) * TOKENS + (nwg.x - row_groups) + 1u;
  tok0 = wg.y * TOKENS;
  for (var r = 0u; r < RPL; r++) {
    w_row[r] = min(wg.x * OUT_RPL * WG + (r % OUT_RPL) * WG + lid, params.rows - 1u) * per_row;
  }
  for (var j = 0u; j < TOKENS; j++) {
    x_row[j] = min(tok0 + j, n - 1u) * (params.cols / 4u);
  }
  return true;
}

// Writes this lane's rows of workgroup `wgx` for tokens tok0 .. (before n) from acc; li is the subgroup lane.
fn lanes_finish(wgx: u32, lid: u32, li: u32) {
  let cols = params.cols;
  var inv_rms = 1.0;
  if (NORM_IN) {
    var s = 0.0;
    for (var k = li; k < (params.norm_parts + 3u) / 4u; k += WG) {
      let v = x4[cols / 4u + k];
      s += v.x + v.y + v.z + v.w;
    }
    inv_rms = inverseSqrt(subgroupAdd(s) / f32(cols) + params.norm_eps);
  }
  var sq = 0.0;
  for (var r = 0u; r < OUT_RPL; r++) {
    let row = wgx * OUT_RPL * WG + r * WG + lid;
    for (var j = 0u; j < TOKENS; j++) {
      if (tok0 + j < n && row < params.rows) {
        let i = (tok0 + j) * params.y_stride + params.row_offset + row;
        let a = acc[r][j] * inv_rms;
        let v = select(combine(y[i], a), silu(a) * acc[(r + OUT_RPL) % MAX_RPL][j] * inv_rms, SWIGLU);
        y[i] = v;
        if (NORM_OUT) {
          let at = params.row_offset + row;
          xn[params.norm_dim + at] = v * xn[at];
          sq += v * v;
        }
      }
    }
  }
  if (NORM_OUT) {
    let total = subgroupAdd(sq);
    if (lid == 0u) {
      xn[2u * params.norm_dim + (params.row_offset + wgx * OUT_RPL * WG) / (OUT_RPL * WG)] = total;
    }
  }
}
