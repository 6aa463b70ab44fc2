/**
 * The native sensor engine (native/sensor: a BPF program loaded by a small Go program with
 * cilium/ebpf): where `npm run build:sensor` puts its binary. It is built on the node (CO-RE
 * against the kernel's BTF), never kept in the repository.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `<repo>/dist/native/containment-sensor`, from src/runtime/sensor or dist/runtime/sensor alike. */
export const NATIVE_SENSOR_BIN =
  process.env.CONTAINMENT_NATIVE_SENSOR ??
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'dist', 'native', 'containment-sensor');
