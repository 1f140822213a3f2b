// Every idempotency key and workflow id devflow writes, built in one place. A key names one
// logical fact: writing it again is a no-op, so two builders must never collide and one fact
// must never get two spellings. The strings are stored in databases of running deployments:
// change a builder's output only with a migration in mind.

export const workflowIds = {
  run: (runId: string) => `devflow-run:${runId}`,
  stackCheck: (id: string) => `devflow-stack-check:${id}`,
  /** One per run: delivers its webhook notifications in order. */
  notify: (runId: string) => `devflow-notify:${runId}`,
  /** The Temporal Schedule of a devflow schedule. */
  schedule: (scheduleId: string) => `devflow-schedule:${scheduleId}`,
  /** Each fire's workflow: Temporal appends the fire time to this. */
  scheduledRun: (scheduleId: string) => `devflow-scheduled-run:${scheduleId}`,
};

/** Run events. */
export const runKeys = {
  created: (runId: string) => `run:${runId}:created`,
  started: (runId: string) => `run:${runId}:started`,
  terminal: (runId: string) => `run:${runId}:terminal`,
  report: (runId: string) => `run:${runId}:report`,
  /** A gate approved: the run leaves `paused` (human gate) or `awaiting_approval` (approval gate) ... */
  resumedAfterGate: (approvalRequestId: string) => `run-resumed:${approvalRequestId}`,
  /** ... and, after a human gate that paused it at an approval gate, goes on executing. */
  executingAfterGate: (approvalRequestId: string) => `run-resumed:${approvalRequestId}:executing`,
};

/** The events of one gate opening: keyed by phase, gate and attempt. */
export const gateKeys = (what: 'phase-gate' | 'session-gate' | 'run-gate' | 'gate' | 'phase-failed' | 'session-failed' | 'run-paused', phaseId: string, gateKey: string, attempt: number) =>
  `${what}:${phaseId}:${gateKey}:${attempt}`;

/** Phase events. */
export const phaseKeys = {
  running: (phaseId: string, attempt: number) => `phase:${phaseId}:running:${attempt}`,
  awaitingArtifact: (phaseId: string, attempt: number) => `phase:${phaseId}:awaiting:${attempt}`,
  completed: (phaseId: string) => `phase:${phaseId}:completed`,
  /** A phase completed again after a loop sent the work back to it (round 2 on; round 1 is `completed`). */
  completedInRound: (phaseId: string, round: number) => `phase:${phaseId}:completed:round:${round}`,
  /** The `round`-th time this phase's artifact sent the work back. */
  looped: (phaseId: string, round: number) => `phase:${phaseId}:looped:${round}`,
  completedAtGate: (approvalRequestId: string) => `phase-completed:${approvalRequestId}`,
  endedByRun: (phaseId: string) => `phase:${phaseId}:ended-by-run`,
  lostSession: (phaseId: string, approvalRequestId: string) => `phase:${phaseId}:lost:${approvalRequestId}`,
  /** The attempt in flight when its agent process was lost (devflow restarts it on its own). */
  lostAgent: (phaseId: string, attempt: number) => `phase:${phaseId}:lost-agent:${attempt}`,
};

/** Prompt and artifact events. */
export const promptKeys = {
  sent: (phaseId: string, attempt: number) => `prompt:${phaseId}:${attempt}`,
  delivering: (phaseId: string, attempt: number) => `prompt:${phaseId}:${attempt}:delivering`,
  artifactChecked: (phaseId: string, attempt: number, hash: string) => `artifact:${phaseId}:${attempt}:${hash}`,
};

/** Session events. */
export const sessionKeys = {
  created: (sessionId: string) => `session:${sessionId}:created`,
  bootstrapping: (sessionId: string) => `session:${sessionId}:bootstrapping`,
  ready: (sessionId: string) => `session:${sessionId}:ready`,
  startFailed: (sessionId: string, attempt: number) => `session:${sessionId}:start-failed:${attempt}`,
  dialog: (sessionId: string, dialog: string, launch: string) => `session:${sessionId}:dialog:${dialog}:${launch}`,
  busy: (sessionId: string, phaseId: string, attempt: number) => `session:${sessionId}:busy:${phaseId}:${attempt}`,
  /** Idle again: after its phase completed, after its approval gate passed, or found alive after a wait. */
  idleAfterPhase: (sessionId: string, phaseId: string, attempt: number) => `session:${sessionId}:idle:${phaseId}:${attempt}`,
  idleAfterApproval: (approvalRequestId: string) => `session-idle:${approvalRequestId}`,
  idleAfterResume: (sessionId: string, since: Date) => `session:${sessionId}:idle:resume:${since.getTime()}`,
  probe: (sessionId: string, cycle: string) => `session:${sessionId}:probe:${cycle}`,
  recovery: (sessionId: string, step: 'resuming' | 'rebootstrapped' | 'recovered', cycle: string) => `session:${sessionId}:${step}:${cycle}`,
  lost: (sessionId: string) => `session:${sessionId}:failed`,
  /** Its agent process found gone, the `n`-th time (the first is recovered by devflow on its own). */
  processLost: (sessionId: string, n: number) => `session:${sessionId}:process-lost:${n}`,
  closed: (sessionId: string) => `session:${sessionId}:closed`,
  /** The session manager's startup recovery: the session, its run and the gate it opens. */
  unrecoverable: (sessionId: string, what: 'failed' | 'paused' | 'gate') => `recovery:${sessionId}:${what}`,
};

/** Approval requests and decisions. */
export const approvalKeys = {
  requested: (approvalRequestId: string) => `approval:${approvalRequestId}:requested`,
  decided: (approvalRequestId: string) => `approval:${approvalRequestId}:decided`,
  closed: (approvalRequestId: string) => `approval:${approvalRequestId}:closed`,
  /** One decision row per (request, action, client token): the same click twice is one decision. */
  decision: (approvalRequestId: string, action: string, clientToken: string) => `${approvalRequestId}:${action}:${clientToken}`,
};
