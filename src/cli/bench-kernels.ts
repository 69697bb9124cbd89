/** Placeholder replaced by the kernel benchmark. */
export async function run(): Promise<number> {
  console.log('bench-kernels: no kernels registered yet');
  return 0;
}
