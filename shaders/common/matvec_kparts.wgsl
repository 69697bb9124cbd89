// sums() of the matvec kernels for k-quant weights (matvec_q45k, matvec_q6k), appended by src/gpu/shaders.ts: thread
// t takes the 64-value parts t, t + WG, ... (4 per block of 256 values) of the 4 row slots. The kernel's
// part_sums(r, p, x4_base) is part p of the rows r (given as row * blocks) against the x row from vec4 x4_base; it
// loads the part's 16 vec4s of x once for the 4 rows.

fn sums(t: u32, z: u32, rows: vec4u) -> vec4f {
  let cols = params.cols;
  let x4_base = z * (cols / 4u);
  let r = rows * (cols / 256u);
  var acc = vec4f(0.0);
  for (var p = t; p < cols / 64u; p += WG) {
    acc += part_sums(r, p, x4_base);
  }
  return acc;
}
