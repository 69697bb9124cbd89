// The frame of every matvec_<dtype>.wgsl kernel, appended by src/gpu/shaders.ts (after common/linear.wgsl): the
// entry point, the rows of the workgroup's 4 row slots, and the end. The kernel (or a prelude it lists) defines
// sums(t, z, rows): thread t's partial sums of the 4 row slots (rows, within the chunk) against token z's x. They
// are added through workgroup memory, scaled by 1 / rms with NORM_IN, and written by the first OUT_ROWS threads
// (combine(), or the SwiGLU pair); with NORM_OUT each new row times g goes into xn and the workgroup's sum of their
// squares after it. Uses the kernel's x, y, xn and params.

override WG: u32 = 64u;
// Rows of y a workgroup writes: 4, or 2 with SWIGLU (its 4 row slots then hold 2 rows of W and the same 2 of U).
override OUT_ROWS: u32 = select(4u, 2u, SWIGLU);

var<workgroup> partial: array<vec4f, WG>;
var<workgroup> norm_sh: array<f32, WG>; // NORM_IN: each thread's share of the partial sums of x^2
var<workgroup> sq_sh: array<f32, 4>; // NORM_OUT: squares of the new y rows (zero past the chunk)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let first = (wg.y * nwg.x + wg.x) * OUT_ROWS;
  // Rows past the chunk (the last workgroup) read the last row again and are not written.
  // With SWIGLU, slots z and w are the same rows of U.
  let rows = min(vec4u(first) + select(vec4u(0u, 1u, 2u, 3u), vec4u(0u, 1u, 0u, 1u), SWIGLU), vec4u(params.rows - 1u));
  finish(t, first, wg.z, sums(t, wg.z, rows));
}

// Thread t's sums `acc` for the 4 row slots of the workgroup whose rows start at `first`, token z.
fn finish(t: u32, first: u32, z: u32, acc: vec4f) {
  let cols = params.cols;
  partial[t] = acc;
  if (NORM_IN) {
    var s = 0.0;
    for (var p = t; p < params.norm_parts; p += WG) {
      s += x[cols + p];
    }
    norm_sh[t] = s;
  }
  workgroupBarrier();
  if (t < OUT_ROWS) {
    var sum = 0.0;
    var up = 0.0;
    var ss = 0.0;
    for (var i = 0u; i < WG; i++) {
      sum += partial[i][t];
      up += partial[i][(t + 2u) % 4u];
      ss += norm_sh[i];
    }
    if (NORM_IN) {
      let inv_rms = inverseSqrt(ss / f32(cols) + params.norm_eps);
      sum *= inv_rms;
      up *= inv_rms;
    }
    if (first + t < params.rows) {
      let i = z * params.y_stride + params.row_offset + first + t;
      let v = select(combine(y[i], sum), silu(sum) * up, SWIGLU);
      y[i] = v;
      if (NORM_OUT) {
        let row = params.row_offset + first + t;
        xn[params.norm_dim + row] = v * xn[row];
        sq_sh[t] = v * v;
      }
    }
  }
  if (NORM_OUT) {
    workgroupBarrier();
    if (t == 0u) {
      xn[2u * params.norm_dim + (params.row_offset + first) / OUT_ROWS] = sq_sh[0] + sq_sh[1] + sq_sh[2] + sq_sh[3];
    }
  }
}
