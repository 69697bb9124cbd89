/// <reference types="@webgpu/types" />
// TypeScript before 6.0 has no WebGPU in its DOM lib (6.0 and later do, and conflict with @webgpu/types): there the
// package's "types@<6.0" condition picks this file, which adds @webgpu/types to the same declarations.
export * from '../dist/types/index.js';
