/** Whether this browser can run models, and in words why not. */
export type GpuCheck = { ok: true; adapter: string } | { ok: false; message: string };

export async function checkWebGpu(): Promise<GpuCheck> {
  if (!window.isSecureContext) {
    return { ok: false, message: 'WebGPU needs a secure page: open this app over https:// or from localhost. Models can still be installed and managed here.' };
  }
  if (!('gpu' in navigator) || !navigator.gpu) {
    return {
      ok: false,
      message:
        'WebGPU is not available in this browser, so models cannot run here. Use a recent Chrome or Edge, Safari 26 or later, ' +
        'or Firefox with WebGPU enabled (on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu). Models can still be installed and managed here.',
    };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    adapter = null;
  }
  if (!adapter) {
    return { ok: false, message: 'This browser has WebGPU but found no usable GPU. Turn on hardware acceleration in the browser settings, update the GPU driver, or try another browser.' };
  }
  const i = adapter.info;
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unnamed adapter';
  return { ok: true, adapter: `WebGPU: ${name}${adapter.features.has('shader-f16') ? ', shader-f16' : ''}` };
}
