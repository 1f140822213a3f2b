// The real codex CLI (pinned, from devflow's cache) drives runs end to end: see helpers/real-agent-suite.ts.
import { realAgentSuite } from './helpers/real-agent-suite.ts';

realAgentSuite('codex');
