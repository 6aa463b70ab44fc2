/** Every package extractor, keyed by its stable id. */
import type { PackageExtractor } from '../context.js';
import { apkExtractor } from './apk.js';
import { dpkgExtractor } from './dpkg.js';
import { goBinaryExtractor } from './go-binary.js';
import { javaExtractor } from './java.js';
import { npmExtractor } from './npm.js';
import { pythonExtractor } from './python.js';
import { rpmExtractor } from './rpm.js';

export const packageExtractors: readonly PackageExtractor[] = [
  dpkgExtractor,
  apkExtractor,
  rpmExtractor,
  npmExtractor,
  pythonExtractor,
  goBinaryExtractor,
  javaExtractor,
];
