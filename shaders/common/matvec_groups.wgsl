// sums() of the matvec kernels whose rows are groups of 32 values with a scale each (matvec_q8, matvec_q4), appended
// by src/gpu/shaders.ts. Thread t takes groups t, t + WG, ... of the 4 row slots (neighbouring threads read
// neighbouring groups) and loads a group's 8 vec4s of x once for them; the kernel's rows_dot(r, g, xv) is group g of
// the rows r (given as row * G, G = ceil(cols / 32)) against those 32 values.

fn sums(t: u32, z: u32, rows: vec4u) -> vec4f {
  let cols = params.cols;
  // Token z: x row z (cols a multiple of 4 when there are several, so rows start on a vec4).
  let x4_base = z * (cols / 4u);
  let x_base = z * cols;
  let groups = (cols + 31u) / 32u;
  let r = rows * groups;
  var acc = vec4f(0.0);
  let full = cols / 32u;
  for (var g = t; g < full; g += WG) {
    var xv: array<vec4f, 8>;
    for (var i = 0u; i < 8u; i++) {
      xv[i] = x4[x4_base + 8u * g + i];
    }
    acc += rows_dot(r, g, xv);
  }
  // The last group when cols is not a multiple of 32: x read one value at a time, zero past cols.
  if (full < groups && t == full % WG) {
    var xv: array<vec4f, 8>;
    for (var i = 0u; i < 8u; i++) {
      let c = 32u * full + 4u * i;
      xv[i] = select(vec4f(0.0), vec4f(x[x_base + min(c, cols - 1u)], x[x_base + min(c + 1u, cols - 1u)], x[x_base + min(c + 2u, cols - 1u)], x[x_base + min(c + 3u, cols - 1u)]), vec4u(c) + vec4u(0u, 1u, 2u, 3u) < vec4u(cols));
    }
    acc += rows_dot(r, full, xv);
  }
  return acc;
}
