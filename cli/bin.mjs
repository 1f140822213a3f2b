#!/usr/bin/env node
// `devflow` on PATH (npm link / npx): load TypeScript through tsx, then the real entry point.
import { register } from 'tsx/esm/api';

register();
await import('./devflow.ts');
