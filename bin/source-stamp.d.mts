/** Types for source-stamp.mjs (plain JavaScript so that bin/ runs without a build). */
export interface SourceStamp {
  hash: string;
  fingerprint: string;
}
export const STAMP_FILE: string;
export function sourceStamp(root: string): SourceStamp;
export function writeStamp(root: string, stamp: SourceStamp): void;
export function distIsCurrent(root: string): boolean;
