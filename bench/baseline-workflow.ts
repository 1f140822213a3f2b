// The bare Temporal baseline `npm run bench` sets devflow beside: one plain activity per phase
// and one signal at the gate, nothing of devflow's. What it costs is what the engine costs.
import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export interface BaselineActivities {
  /** Stands for a phase's work; it records when it started and when it returned. */
  baselineStep(input: { runKey: string; index: number }): Promise<void>;
}

export interface BaselineInput {
  runKey: string;
  phases: number;
  /** The index of the phase after which a person approves (a gate), as devflow's spec gate. */
  gateAfter: number;
}

export const baselineApprove = defineSignal('baselineApprove');
export const baselineAtGate = defineQuery<boolean>('baselineAtGate');

const { baselineStep } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1 minute' });

export async function baselineRun(input: BaselineInput): Promise<void> {
  let approved = false;
  let atGate = false;
  setHandler(baselineApprove, () => void (approved = true));
  setHandler(baselineAtGate, () => atGate);
  for (let index = 0; index < input.phases; index++) {
    await baselineStep({ runKey: input.runKey, index });
    if (index === input.gateAfter) {
      atGate = true;
      await condition(() => approved);
      atGate = false;
    }
  }
}
