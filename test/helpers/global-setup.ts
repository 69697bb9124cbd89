/** Prints the WebGPU adapters the test run uses, with the limits and features that matter, before any test. */
import { summarizeAdapter } from '../../src/gpu/device.ts';
import { nodeAdapter } from '../../src/gpu/node.ts';
import { wantedAdapters } from './gpu.ts';

export default async function setup(): Promise<void> {
  const lines: string[] = ['WebGPU adapters for this test run:'];
  const missing: string[] = [];
  for (const name of wantedAdapters()) {
    const adapter = await nodeAdapter(name);
    if (!adapter) {
      missing.push(name);
      lines.push(`  ${name}: NOT FOUND`);
      continue;
    }
    const s = summarizeAdapter(adapter);
    lines.push(
      `  ${name}: ${s.vendor} / ${s.architecture} / ${s.description || s.device}; fallback=${s.isFallbackAdapter} ` +
        `shader-f16=${s.f16} subgroups=${s.subgroups} maxStorageBufferBindingSize=${s.maxStorageBufferBindingSize} ` +
        `maxBufferSize=${s.maxBufferSize} workgroupStorage=${s.maxComputeWorkgroupStorageSize} ` +
        `invocations=${s.maxComputeInvocationsPerWorkgroup} storageBuffersPerStage=${s.maxStorageBuffersPerShaderStage}`,
    );
  }
  console.log(lines.join('\n'));
  if (missing.length > 0) {
    if (process.env.CI) throw new Error(`CI needs every test adapter; missing: ${missing.join(', ')}. Run scripts/setup-system.sh.`);
    console.warn(`\n!!!!!!!! Missing WebGPU adapters (${missing.join(', ')}): their GPU tests will be SKIPPED. !!!!!!!!\n`);
  }
}
